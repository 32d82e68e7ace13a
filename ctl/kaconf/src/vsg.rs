//! `virtual_server_group NAME { ... }` and the services of `virtual_server group NAME { ... }`.
//!
//! A group lists `<vip> <port>` lines, a vip possibly a last-octet range (`10.0.0.1-10`: .1 to
//! .10, as keepalived spells it). A virtual server naming the group stands for one service per
//! member, each with its settings; the model holds those services, so the rest of the system
//! sees plain ones, and keeps the group to write the configuration back. Groups may be defined
//! before or after the virtual servers that name them.
//!
//! `fwmark` members and `virtual_server fwmark N` are refused: keepalived has the kernel
//! classify those packets by a netfilter mark, and lbd's workers, which classify by address
//! and port, never see kernel marks.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::convert::{list_lines, single_arg_block};
use crate::error::{Error, ErrorKind, Pos};
use crate::model::{VirtualServer, VirtualServerGroup, VsgEntry};
use crate::tree::Node;
use crate::value;

/// Why `fwmark` services are refused, wherever they are written.
pub(crate) const FWMARK_WHY: &str = "fwmark services need kernel packet marks; lbd classifies by \
    address and port — use a virtual_server_group of addresses";

/// The refusal of a `fwmark` word at `pos`, for the statement `keyword`.
pub(crate) fn fwmark_refused(pos: &Pos, keyword: &str) -> Error {
    pos.error(
        keyword,
        ErrorKind::NotSupported {
            what: FWMARK_WHY.into(),
        },
    )
}

/// `10.0.0.1` or keepalived's last-octet range `10.0.0.1-10`, as its first and last address.
pub(crate) fn address_span(text: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let Some((first, last)) = text.split_once('-') else {
        let ip = value::ipv4(text)?;
        return Ok((ip, ip));
    };
    let first = value::ipv4(first)?;
    let [a, b, c, start] = first.octets();
    let end = value::u8_in(last, 0, 255).map_err(|why| format!("range end {why}"))?;
    if end < start {
        return Err(format!("range end {end} is below its start {start}"));
    }
    Ok((first, Ipv4Addr::new(a, b, c, end)))
}

/// Parses `virtual_server_group <name> { <vip>[-<end>] <port> ... }`.
pub(crate) fn group(n: &Node) -> Result<VirtualServerGroup, Error> {
    let name = single_arg_block(n, "group name")?;
    let kw = n.keyword.as_str();
    let mut entries = Vec::new();
    let mut lines: HashMap<(Ipv4Addr, u16), u32> = HashMap::new();
    for words in list_lines(n)? {
        let [addr, rest @ ..] = words.as_slice() else {
            continue;
        };
        if addr.text == "fwmark" {
            return Err(fwmark_refused(&addr.pos, kw));
        }
        let port = match rest {
            [port] => port.parse(kw, value::port)?,
            [] => {
                return Err(addr.err(
                    kw,
                    ErrorKind::MissingArgument {
                        what: format!("port after {}", addr.text),
                    },
                ))
            }
            [_, extra, ..] => {
                return Err(extra.err(
                    kw,
                    ErrorKind::ExtraArgument {
                        arg: extra.text.into(),
                    },
                ))
            }
        };
        let (first, last) = addr.parse(kw, address_span)?;
        let entry = VsgEntry { first, last, port };
        for (ip, port) in entry.services() {
            if let Some(first_line) = lines.insert((ip, port), addr.pos.line) {
                return Err(addr.bad(
                    kw,
                    format!("{ip} {port} is listed twice (first at line {first_line})"),
                ));
            }
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(n.err(ErrorKind::Missing {
            what: "members: a virtual_server_group lists at least one `<address> <port>`".into(),
        }));
    }
    Ok(VirtualServerGroup {
        name,
        entries,
        file: n.file.to_path_buf(),
        line: n.line,
    })
}

/// The services `vs` stands for when it names `group`: one per member, in the group's order.
pub(crate) fn expand(vs: &VirtualServer, group: &VirtualServerGroup) -> Vec<VirtualServer> {
    group
        .services()
        .into_iter()
        .map(|(vip, port)| VirtualServer {
            vip,
            port,
            ..vs.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_last_octet_ranges() {
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        assert_eq!(address_span("10.0.0.1-10"), Ok((ip(1), ip(10))));
        assert_eq!(address_span("10.0.0.7"), Ok((ip(7), ip(7))));
        assert_eq!(address_span("10.0.0.7-7"), Ok((ip(7), ip(7))));
        assert!(address_span("10.0.0.7-6").unwrap_err().contains("below"));
        assert!(address_span("10.0.0.7-256").is_err());
        assert!(address_span("10.0.0.7-").is_err());
        assert!(address_span("10.0.0-7").is_err());
        assert!(address_span("10.0.0.1-10.0.0.5").is_err());
    }
}
