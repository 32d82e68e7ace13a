//! The generic block tree: every statement as keyword, arguments, optional `{ ... }` children
//! and its position, with `include` directives already replaced by the included statements.
//!
//! A block opens with `{` at the end of the statement's line or alone on a following line, and
//! closes with `}`; several statements may share a line when braces separate them
//! (`url { path /healthz }`). Each file must balance its own braces. `include <path-or-glob>`
//! may appear anywhere a statement may; a relative path is taken from the including file's
//! directory (keepalived changes into it while reading a file); the pattern is matched by the
//! `glob` crate with glob(3)'s rules; a pattern that matches nothing is a warning, as
//! keepalived only logs it; the included statements keep their own file and line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Pos, Warning};
use crate::lexer::{tokenize, Token, TokenKind};

/// Deepest `{` nesting accepted (keepalived's own grammar needs 4).
pub const MAX_DEPTH: usize = 32;
/// Deepest chain of files including files.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: String,
    pub args: Vec<Arg>,
    /// `None` when the statement has no block; `Some(vec![])` for `{ }`.
    pub children: Option<Vec<Node>>,
    pub file: Arc<Path>,
    pub line: u32,
    pub column: u32,
}

/// One argument of a statement, without its quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub text: String,
    pub quoted: bool,
    pub line: u32,
    pub column: u32,
}

/// A parsed file with its includes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// Include patterns that matched no file.
    pub warnings: Vec<Warning>,
}

/// Parses `text` as the contents of `path` (used for positions and to resolve includes).
pub fn parse_tree_str(text: &str, path: &Path) -> Result<Tree, Error> {
    let mut ctx = Ctx {
        stack: Vec::new(),
        warnings: Vec::new(),
    };
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    ctx.stack.push((key, path.to_path_buf()));
    let nodes = parse_file(&mut ctx, text, Arc::from(path), 0)?;
    Ok(Tree {
        nodes,
        warnings: ctx.warnings,
    })
}

/// Reads and parses the file at `path`.
pub fn load_tree(path: &Path) -> Result<Tree, Error> {
    let text = read(path).map_err(|kind| file_error(path, kind))?;
    parse_tree_str(&text, path)
}

fn file_error(path: &Path, (line, column, kind): (u32, u32, ErrorKind)) -> Error {
    Error {
        file: path.to_path_buf(),
        line,
        column,
        keyword: "file".into(),
        kind,
    }
}

/// Reads a file as UTF-8. On failure: the position of the problem (1:1 for I/O errors).
fn read(path: &Path) -> Result<String, (u32, u32, ErrorKind)> {
    let bytes = std::fs::read(path).map_err(|e| {
        (
            1,
            1,
            ErrorKind::Io {
                path: path.display().to_string(),
                msg: e.to_string(),
            },
        )
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (to_u32(line), to_u32(column), ErrorKind::NotUtf8)
    })
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Ctx {
    /// Files being parsed, outermost first: (canonical path, path as written).
    stack: Vec<(PathBuf, PathBuf)>,
    warnings: Vec<Warning>,
}

struct Parser<'a> {
    tokens: Vec<Token>,
    i: usize,
    file: Arc<Path>,
    ctx: &'a mut Ctx,
}

fn parse_file(
    ctx: &mut Ctx,
    text: &str,
    file: Arc<Path>,
    depth: usize,
) -> Result<Vec<Node>, Error> {
    let tokens = tokenize(text).map_err(|e| Error {
        file: file.to_path_buf(),
        line: e.line,
        column: e.column,
        keyword: e.keyword,
        kind: e.kind,
    })?;
    let mut p = Parser {
        tokens,
        i: 0,
        file,
        ctx,
    };
    p.items(depth, None)
}

impl Parser<'_> {
    fn pos(&self, t: &Token) -> Pos {
        Pos {
            file: self.file.clone(),
            line: t.line,
            column: t.column,
        }
    }

    /// Statements up to the end of the file (`opener` is `None`) or up to the `}` that closes
    /// the block opened by `opener` (the `{` token and its statement's keyword).
    fn items(&mut self, depth: usize, opener: Option<(Token, &str)>) -> Result<Vec<Node>, Error> {
        let mut nodes = Vec::new();
        loop {
            let Some(tok) = self.tokens.get(self.i).cloned() else {
                return match opener {
                    Some((open, kw)) => Err(self.pos(&open).error(kw, ErrorKind::UnclosedBrace)),
                    None => Ok(nodes),
                };
            };
            self.i += 1;
            match tok.kind {
                TokenKind::Newline => {}
                TokenKind::Close if opener.is_some() => return Ok(nodes),
                TokenKind::Close => {
                    return Err(self.pos(&tok).error("}", ErrorKind::UnmatchedCloseBrace))
                }
                TokenKind::Open => {
                    return Err(self.pos(&tok).error("{", ErrorKind::StrayOpenBrace))
                }
                TokenKind::Word { ref text, quoted } => {
                    let node = self.statement(text, &tok, depth)?;
                    if text == "include" && !quoted {
                        nodes.extend(self.include(node, depth)?);
                    } else {
                        nodes.push(node);
                    }
                }
            }
        }
    }

    /// The rest of a statement whose keyword `kw` (token `tok`) was just consumed.
    fn statement(&mut self, kw: &str, tok: &Token, depth: usize) -> Result<Node, Error> {
        let mut args = Vec::new();
        while let Some(Token {
            kind: TokenKind::Word { text, quoted },
            line,
            column,
        }) = self.tokens.get(self.i)
        {
            args.push(Arg {
                text: text.clone(),
                quoted: *quoted,
                line: *line,
                column: *column,
            });
            self.i += 1;
        }
        // `{` right after the arguments, or alone on a later line.
        let mut j = self.i;
        while let Some(TokenKind::Newline) = self.tokens.get(j).map(|t| &t.kind) {
            j += 1;
        }
        let children = match self.tokens.get(j) {
            Some(
                open @ Token {
                    kind: TokenKind::Open,
                    ..
                },
            ) => {
                let open = open.clone();
                if depth >= MAX_DEPTH {
                    return Err(self
                        .pos(&open)
                        .error(kw, ErrorKind::TooDeep { max: MAX_DEPTH }));
                }
                self.i = j + 1;
                Some(self.items(depth + 1, Some((open, kw)))?)
            }
            _ => None,
        };
        let pos = self.pos(tok);
        Ok(Node {
            keyword: kw.to_owned(),
            args,
            children,
            file: pos.file,
            line: pos.line,
            column: pos.column,
        })
    }

    /// `include PATH-OR-GLOB`, as keepalived reads it: glob(3) syntax (`*`, `?`, `[...]`;
    /// a `*` matches no `/` and no leading `.`), relative to the including file's directory,
    /// matches in sorted order, directories left out. A pattern matching no file is a warning
    /// (keepalived logs it and goes on), as is an executable file, which keepalived skips.
    fn include(&mut self, node: Node, depth: usize) -> Result<Vec<Node>, Error> {
        if node.children.is_some() {
            return Err(node.err(ErrorKind::UnexpectedBlock));
        }
        let arg = node.one_arg("file name or glob pattern")?;
        if arg.text.is_empty() {
            return Err(node.bad(arg, "empty file name"));
        }
        if arg.text.contains(['{', '}']) {
            let what = "brace alternatives in an include pattern (write one include per pattern)";
            return Err(node.arg_err(arg, ErrorKind::NotSupported { what: what.into() }));
        }
        let pattern = self.include_pattern(&arg.text);
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&pattern, options).map_err(|e| {
            node.bad(
                arg,
                format!("not a glob pattern: {} (at character {})", e.msg, e.pos + 1),
            )
        })?;
        // Unreadable directories match nothing, as with glob(3) without GLOB_ERR.
        let mut files: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| !p.is_dir())
            .collect();
        files.sort();
        if files.is_empty() {
            self.ctx
                .warnings
                .push(node.warning(format!("{pattern} matched no file; nothing included")));
        }
        let mut nodes = Vec::new();
        for file in files {
            if is_executable(&file) {
                self.ctx.warnings.push(node.warning(format!(
                    "{} is executable; skipped, as keepalived skips executable configuration files",
                    file.display()
                )));
                continue;
            }
            nodes.extend(self.include_file(&node, file, depth)?);
        }
        Ok(nodes)
    }

    /// The glob pattern for `written`: relative to the including file's directory, whose own
    /// name is matched literally (a directory called `conf[1]` is not a pattern).
    fn include_pattern(&self, written: &str) -> String {
        if Path::new(written).is_absolute() {
            return written.to_owned();
        }
        match self.file.parent().map(|d| d.to_string_lossy()) {
            Some(dir) if !dir.is_empty() => {
                let dir = glob::Pattern::escape(&dir);
                format!("{}/{written}", dir.trim_end_matches('/'))
            }
            _ => written.to_owned(),
        }
    }

    fn include_file(
        &mut self,
        node: &Node,
        file: PathBuf,
        depth: usize,
    ) -> Result<Vec<Node>, Error> {
        let io = |e: std::io::Error| {
            node.err(ErrorKind::Io {
                path: file.display().to_string(),
                msg: e.to_string(),
            })
        };
        let key = std::fs::canonicalize(&file).map_err(io)?;
        if self.ctx.stack.iter().any(|(k, _)| *k == key) {
            let mut chain: Vec<String> = self
                .ctx
                .stack
                .iter()
                .map(|(_, shown)| shown.display().to_string())
                .collect();
            chain.push(file.display().to_string());
            return Err(node.err(ErrorKind::IncludeCycle {
                chain: chain.join(" -> "),
            }));
        }
        if self.ctx.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(node.err(ErrorKind::IncludeTooDeep {
                max: MAX_INCLUDE_DEPTH,
            }));
        }
        let text = read(&file).map_err(|kind| match kind {
            (_, _, kind @ ErrorKind::Io { .. }) => node.err(kind),
            other => file_error(&file, other),
        })?;
        self.ctx.stack.push((key, file.clone()));
        let nodes = parse_file(self.ctx, &text, Arc::from(file.as_path()), depth);
        self.ctx.stack.pop();
        nodes
    }
}

/// True for a file with any execute bit set.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Helpers the typed conversion uses to read a statement.
impl Node {
    pub(crate) fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    pub(crate) fn arg_pos(&self, arg: &Arg) -> Pos {
        Pos {
            file: self.file.clone(),
            line: arg.line,
            column: arg.column,
        }
    }

    /// An error about the statement as a whole, at its keyword.
    pub(crate) fn err(&self, kind: ErrorKind) -> Error {
        self.pos().error(&self.keyword, kind)
    }

    /// An error about one argument, at that argument.
    pub(crate) fn arg_err(&self, arg: &Arg, kind: ErrorKind) -> Error {
        self.arg_pos(arg).error(&self.keyword, kind)
    }

    /// `bad value "<arg>": <why>` at the argument.
    pub(crate) fn bad(&self, arg: &Arg, why: impl Into<String>) -> Error {
        self.arg_err(
            arg,
            ErrorKind::BadValue {
                value: arg.text.clone(),
                why: why.into(),
            },
        )
    }

    pub(crate) fn warning(&self, msg: impl Into<String>) -> Warning {
        Warning {
            file: self.file.to_path_buf(),
            line: self.line,
            keyword: self.keyword.clone(),
            msg: msg.into(),
        }
    }

    /// Checks the argument count is within `min..=max`; `what` names the missing ones.
    pub(crate) fn arity(&self, min: usize, max: usize, what: &[&str]) -> Result<(), Error> {
        if let Some(extra) = self.args.get(max) {
            return Err(self.arg_err(
                extra,
                ErrorKind::ExtraArgument {
                    arg: extra.text.clone(),
                },
            ));
        }
        if self.args.len() < min {
            let missing = what.get(self.args.len()).copied().unwrap_or("value");
            return Err(self.err(ErrorKind::MissingArgument {
                what: missing.into(),
            }));
        }
        Ok(())
    }

    /// The single argument of a statement that takes exactly one.
    pub(crate) fn one_arg(&self, what: &str) -> Result<&Arg, Error> {
        self.arity(1, 1, &[what])?;
        self.args
            .first()
            .ok_or_else(|| self.err(ErrorKind::MissingArgument { what: what.into() }))
    }

    /// A statement that takes no argument and no block.
    pub(crate) fn flag(&self) -> Result<(), Error> {
        self.arity(0, 0, &[])?;
        self.no_block()
    }

    pub(crate) fn no_block(&self) -> Result<(), Error> {
        match self.children {
            Some(_) => Err(self.err(ErrorKind::UnexpectedBlock)),
            None => Ok(()),
        }
    }

    pub(crate) fn block(&self) -> Result<&[Node], Error> {
        self.children
            .as_deref()
            .ok_or_else(|| self.err(ErrorKind::MissingBlock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Vec<Node> {
        parse_tree_str(text, Path::new("t.conf")).unwrap().nodes
    }

    #[test]
    fn braces_on_same_or_next_line_and_inline_blocks() {
        let nodes = tree("a 1 {\n b 2\n}\nc\n\n{\n d { e f } g\n}\nh");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].keyword, "a");
        assert_eq!(nodes[0].children.as_ref().unwrap()[0].keyword, "b");
        let c = nodes[1].children.as_ref().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].children.as_ref().unwrap()[0].args[0].text, "f");
        assert_eq!(
            (c[1].keyword.as_str(), c[1].line, c[1].column),
            ("g", 7, 12)
        );
        assert_eq!(nodes[2].children, None);
    }

    #[test]
    fn brace_errors_point_at_the_brace() {
        let e = parse_tree_str("x {\n y {\n }\n", Path::new("t.conf")).unwrap_err();
        assert_eq!((e.line, e.column, e.keyword.as_str()), (1, 3, "x"));
        assert_eq!(e.kind, ErrorKind::UnclosedBrace);
        let e = parse_tree_str("x {\n}\n }", Path::new("t.conf")).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (3, 2, ErrorKind::UnmatchedCloseBrace)
        );
        let e = parse_tree_str("\n{", Path::new("t.conf")).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, 1, ErrorKind::StrayOpenBrace)
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "a {".repeat(MAX_DEPTH + 1);
        let e = parse_tree_str(&deep, Path::new("t.conf")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooDeep { max: MAX_DEPTH });
        let ok = format!("{}{}", "a {".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse_tree_str(&ok, Path::new("t.conf")).is_ok());
    }
}
