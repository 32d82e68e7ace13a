//! What can be wrong with a keepalived.conf, and what we accepted without acting on it.
//!
//! Every [`Error`] prints as `file:line:column: keyword: what is wrong`, where the position is
//! that of the offending word (the argument for a bad value, the keyword otherwise) in the file
//! that holds it, included files included.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration that cannot be used. Nothing is defaulted in its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {keyword}: {kind}", file.display())]
pub struct Error {
    /// The file holding the offending text (an included file where it is in one).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// The keyword being parsed (or the token, for syntax errors such as a stray `}`).
    pub keyword: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong, without the position. Messages name the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("unknown keyword in {context}")]
    UnknownKeyword { context: String },
    #[error("missing argument: {what}")]
    MissingArgument { what: String },
    #[error("unexpected extra argument {arg:?}")]
    ExtraArgument { arg: String },
    #[error("bad value {value:?}: {why}")]
    BadValue { value: String, why: String },
    #[error("given twice in one block (first at line {first_line})")]
    Duplicate { first_line: u32 },
    #[error("{what} is already defined at {at}")]
    AlreadyDefined { what: String, at: String },
    #[error("no local_address_group named {name:?}")]
    UnknownLocalAddressGroup { name: String },
    #[error("no virtual_server_group named {name:?}")]
    UnknownVirtualServerGroup { name: String },
    #[error("missing {what}")]
    Missing { what: String },
    #[error("needs a {{ ... }} block")]
    MissingBlock,
    #[error("takes no {{ ... }} block")]
    UnexpectedBlock,
    #[error("this `{{` is never closed")]
    UnclosedBrace,
    #[error("`}}` without a matching `{{`")]
    UnmatchedCloseBrace,
    #[error("`{{` does not follow a keyword")]
    StrayOpenBrace,
    #[error("quoted string is not closed on this line")]
    UnterminatedQuote,
    #[error("blocks nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("include cycle: {chain}")]
    IncludeCycle { chain: String },
    #[error("includes nested deeper than {max} files")]
    IncludeTooDeep { max: usize },
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    #[error("file is not valid UTF-8")]
    NotUtf8,
    #[error("not supported yet: {what}")]
    NotSupported { what: String },
    /// An option of a one-line statement (`lvs_sync_daemon eth0 VI_1 id 300`) with a bad
    /// value: `id 300 is not in 0..=255`.
    #[error("{option} {value} {why}")]
    BadOption {
        option: &'static str,
        value: String,
        why: String,
    },
    #[error("unknown option {option:?} (the options are {expected})")]
    UnknownOption { option: String, expected: String },
    #[error("option {option} is given twice")]
    DuplicateOption { option: String },
    #[error("names vrrp_instance {name}, which is not defined")]
    UndefinedVrrpInstance { name: String },
    /// A keyword that the block's other settings rule out: `syn_proxy` with `protocol UDP`.
    #[error("cannot be used with {with}: {why}")]
    Incompatible { with: String, why: String },
    #[error("deprecated; write {instead}")]
    Deprecated { instead: String },
}

/// Where a word sits: the file holding it, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pos {
    pub file: std::sync::Arc<Path>,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub(crate) fn error(&self, keyword: &str, kind: ErrorKind) -> Error {
        Error {
            file: self.file.to_path_buf(),
            line: self.line,
            column: self.column,
            keyword: keyword.to_owned(),
            kind,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A keyword that keepalived (or DPVS's keepalived) knows and that we accepted without acting
/// on it yet: the configuration loads, but the director does not do what the keyword asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: u32,
    pub keyword: String,
    pub msg: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.keyword,
            self.msg
        )
    }
}

/// Message for a block that the typed model holds but the director does not use yet.
pub(crate) const NOT_ACTED_ON: &str = "parsed but not acted on yet";
/// Message for a keyword that is accepted, not modelled, and therefore not written by `save`.
pub(crate) const IGNORED: &str = "parsed but not acted on yet (ignored, and not kept by save)";
