//! Health-check decisions with keepalived semantics, free of I/O (filled in next).
