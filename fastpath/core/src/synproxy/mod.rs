//! SYN proxy: the director answers a client's SYN with a SYN cookie and opens the connection to
//! the real server only once the client's ACK proves the cookie.

mod conf;

pub use conf::{SynProxyConf, SynProxyConfError, MAX_WSCALE, MIN_MSS};
