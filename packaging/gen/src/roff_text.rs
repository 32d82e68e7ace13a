//! Plain text into roff: escapes, and preformatted blocks that keep their columns.

/// `text` as roff input: backslashes and hyphens escaped (`\-` is the ASCII hyphen-minus that
/// copies and pastes as such), no line read as a request.
pub fn escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let l = line.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `block` shown as it is (no filling, no adjusting), indented.
pub fn preformatted(block: &str) -> String {
    format!(".PP\n.RS 2\n.nf\n{}\n.fi\n.RE\n", escape(block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("a-b \\n"), "a\\-b \\en");
        assert_eq!(escape(".TH x\n'x\nok"), "\\&.TH x\n\\&'x\nok");
        assert_eq!(preformatted("  x = 1"), ".PP\n.RS 2\n.nf\n  x = 1\n.fi\n.RE\n");
    }
}
