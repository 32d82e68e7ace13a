//! Splits keepalived.conf text into words, braces and line ends.
//!
//! The language is line oriented: a statement is a keyword and its arguments on one line.
//! - `{` and `}` are tokens of their own wherever they appear outside quotes (`url {`, `}}`).
//! - `"..."` is one word without its quotes; it must close on the same line. There are no
//!   escapes (keepalived has none). A `"` is only special at the start of a word.
//! - `!` or `#` at the start of a word starts a comment that runs to the end of the line
//!   (`a#b` is one word, as in keepalived).
//! - A `\` right before the end of a line joins the next line to this one.

use crate::error::ErrorKind;

/// One token with its 1-based position (column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word { text: String, quoted: bool },
    Open,
    Close,
    Newline,
}

/// A lexing error and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub line: u32,
    pub column: u32,
    /// The statement's keyword when the error is in its arguments, else `"`.
    pub keyword: String,
    pub kind: ErrorKind,
}

/// Cursor over the characters that tracks line and column.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '{' || c == '}'
}

/// Tokenizes `text`. Every line end becomes a `Newline` token (consecutive ones included);
/// the parser skips the ones it does not need.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut cur = Cursor {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        let (line, column) = (cur.line, cur.column);
        let at = |kind| Token { kind, line, column };
        match c {
            '\n' => {
                cur.bump();
                out.push(at(TokenKind::Newline));
            }
            '\\' if is_continuation(&cur) => {
                cur.bump();
                skip_line_end(&mut cur);
            }
            c if c.is_whitespace() => {
                cur.bump();
            }
            '!' | '#' => cur.skip_to_eol(),
            '{' => {
                cur.bump();
                out.push(at(TokenKind::Open));
            }
            '}' => {
                cur.bump();
                out.push(at(TokenKind::Close));
            }
            '"' => {
                cur.bump();
                let mut text = String::new();
                loop {
                    match cur.peek() {
                        None | Some('\n') => {
                            return Err(LexError {
                                line,
                                column,
                                keyword: statement_keyword(&out),
                                kind: ErrorKind::UnterminatedQuote,
                            })
                        }
                        Some('"') => {
                            cur.bump();
                            break;
                        }
                        Some(c) => {
                            text.push(c);
                            cur.bump();
                        }
                    }
                }
                out.push(at(TokenKind::Word { text, quoted: true }));
            }
            _ => {
                let mut text = String::new();
                while let Some(c) = cur.peek() {
                    if ends_word(c) || (c == '\\' && is_continuation(&cur)) {
                        break;
                    }
                    text.push(c);
                    cur.bump();
                }
                out.push(at(TokenKind::Word {
                    text,
                    quoted: false,
                }));
            }
        }
    }
    Ok(out)
}

/// The first word after the last line end or brace: the keyword of the statement being read.
fn statement_keyword(out: &[Token]) -> String {
    let start = out
        .iter()
        .rposition(|t| !matches!(t.kind, TokenKind::Word { .. }))
        .map_or(0, |i| i + 1);
    match out.get(start) {
        Some(Token {
            kind: TokenKind::Word { text, .. },
            ..
        }) => text.clone(),
        _ => "\"".into(),
    }
}

/// True when the cursor is at a `\` followed only by blanks up to the end of the line.
fn is_continuation(cur: &Cursor<'_>) -> bool {
    let mut rest = cur.chars.clone();
    if rest.next() != Some('\\') {
        return false;
    }
    for c in rest {
        match c {
            '\n' => return true,
            '\r' | ' ' | '\t' => {}
            _ => return false,
        }
    }
    false
}

fn skip_line_end(cur: &mut Cursor<'_>) {
    while let Some(c) = cur.bump() {
        if c == '\n' {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| match t.kind {
                TokenKind::Word {
                    text,
                    quoted: false,
                } => text,
                TokenKind::Word { text, quoted: true } => format!("<{text}>"),
                TokenKind::Open => "{".into(),
                TokenKind::Close => "}".into(),
                TokenKind::Newline => "NL".into(),
            })
            .collect()
    }

    #[test]
    fn splits_braces_quotes_and_comments() {
        assert_eq!(
            words("url {path /x}} # done\n quorum_up \"ip addr add\" ! c\na#b !x"),
            [
                "url",
                "{",
                "path",
                "/x",
                "}",
                "}",
                "NL",
                "quorum_up",
                "<ip addr add>",
                "NL",
                "a#b"
            ]
        );
    }

    #[test]
    fn positions_are_one_based_characters() {
        let t = tokenize("é  weight 1\n\tx").unwrap();
        assert_eq!((t[1].line, t[1].column), (1, 4));
        assert_eq!((t[2].line, t[2].column), (1, 11));
        assert_eq!((t[4].line, t[4].column), (2, 2));
    }

    #[test]
    fn backslash_joins_lines() {
        assert_eq!(words("a b \\  \n c\nd"), ["a", "b", "c", "NL", "d"]);
        assert_eq!(words("a\\b"), ["a\\b"]);
    }

    #[test]
    fn crlf_is_whitespace() {
        assert_eq!(words("a b\r\nc\r\n"), ["a", "b", "NL", "c", "NL"]);
    }

    #[test]
    fn unterminated_quote_points_at_the_quote() {
        let e = tokenize("x\n  misc_path \"/bin/x\ny").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, 13, ErrorKind::UnterminatedQuote)
        );
        assert_eq!(e.keyword, "misc_path");
        assert_eq!(tokenize("{ \"x").unwrap_err().keyword, "\"");
    }
}
