//! keepalived.conf — the language LVS and DPVS users already write — parsed into a typed
//! model for the director, and written back.
//!
//! Parsing has two stages: [`tree`] turns text into a generic block tree (keyword, arguments,
//! children, file, line, column) with `include`s resolved; the conversion then checks every
//! keyword and value and builds a [`Config`]. An invalid configuration is an [`Error`] printed
//! as `file:line:column: keyword: what is wrong`; nothing is silently defaulted. Keywords that
//! keepalived knows but the director does not act on yet load with a [`Warning`] each.
//!
//! ```
//! let conf = kaconf::parse_str(
//!     "virtual_server 10.0.0.1 80 {\n  lb_algo rr\n  lb_kind DR\n  real_server 10.0.1.1 80\n}\n",
//!     std::path::Path::new("keepalived.conf"),
//! )
//! .unwrap();
//! assert_eq!(conf.virtual_servers[0].real_servers[0].weight, 1);
//! let again = kaconf::parse_str(&conf.to_keepalived_string(), "saved.conf".as_ref()).unwrap();
//! assert!(again.same_settings(&conf));
//! ```
#![forbid(unsafe_code)]

mod check;
mod convert;
mod error;
mod keywords;
mod lexer;
mod model;
mod sync;
pub mod tree;
mod value;
mod vrrp;
mod vs;
mod vsg;
mod write;

use std::path::Path;

pub use error::{Error, ErrorKind, Warning};
pub use keywords::{keyword_table, keyword_table_markdown, Keyword, Status as KeywordStatus};
pub use model::*;

/// Parses `text` as the contents of the file `path`. `path` names the file in errors and
/// warnings, and relative `include`s are read from its directory.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, Error> {
    convert::convert(tree::parse_tree_str(text, path)?)
}

/// Reads and parses the keepalived.conf at `path`, with its includes.
pub fn load(path: &Path) -> Result<Config, Error> {
    convert::convert(tree::load_tree(path)?)
}
