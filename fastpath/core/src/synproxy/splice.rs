//! Sequence splicing for the life of a SYN-proxied session: the client numbers its data from
//! its own ISN (which the real server saw too) but acknowledges the director's cookie ISN;
//! the real server numbers its data from its own ISN. Acknowledgements (and SACK edges)
//! toward the real server gain `delta`, sequence numbers toward the client lose it.

use crate::verdict::DropReason;
use crate::wire::checksum::{update16, update32};
use crate::wire::{Ipv4Packet, TcpFlags, TcpOption, TcpOptionsIter, TcpPacket};

use super::{rescale, Splice};

const SACK_KIND: u8 = 5;

/// Adjusts a client segment (addresses already rewritten) for the real server. `Err` for a
/// pure ACK beyond the ack-storm threshold.
pub(crate) fn to_rs(ip: &mut [u8], sp: &mut Splice) -> Result<(), DropReason> {
    let mut pkt = Ipv4Packet::new_unchecked(&mut *ip);
    let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
    let mut t = TcpPacket::new_unchecked(pkt.payload_mut());
    let flags = t.flags();
    if flags.contains(TcpFlags::ACK) {
        let ack = t.ack_number();
        if flags == TcpFlags::ACK && t.payload().is_empty() {
            if ack == sp.last_ack {
                sp.dup_acks = sp.dup_acks.saturating_add(1);
                if sp.storm_thresh > 0 && sp.dup_acks > sp.storm_thresh {
                    return Err(DropReason::SynProxyAckStorm);
                }
            } else {
                (sp.last_ack, sp.dup_acks) = (ack, 0);
            }
        }
        let new = ack.wrapping_add(sp.delta);
        let c = update32(t.checksum(), ack, new);
        t.set_ack_number(new);
        t.set_checksum(c);
    }
    if sp.to_rs_shift != (0, 0) {
        let w = rescale(t.window_len(), sp.to_rs_shift);
        set_window(&mut t, w);
    }
    if has_sack(t.options()) {
        shift_sack(t.options_mut(), sp.delta);
        t.fill_checksum(src, dst);
    }
    Ok(())
}

/// Adjusts a real-server segment (addresses already rewritten) for the client.
pub(crate) fn to_client(ip: &mut [u8], sp: &mut Splice) {
    let mut pkt = Ipv4Packet::new_unchecked(&mut *ip);
    let mut t = TcpPacket::new_unchecked(pkt.payload_mut());
    if !t.payload().is_empty() {
        // Data from the server: duplicate ACKs from the client are legitimate again.
        sp.dup_acks = 0;
    }
    let seq = t.seq_number();
    let new = seq.wrapping_sub(sp.delta);
    let c = update32(t.checksum(), seq, new);
    t.set_seq_number(new);
    t.set_checksum(c);
    if sp.to_client_shift != (0, 0) {
        let w = rescale(t.window_len(), sp.to_client_shift);
        set_window(&mut t, w);
    }
}

fn set_window(t: &mut TcpPacket<&mut [u8]>, v: u16) {
    let c = update16(t.checksum(), t.window_len(), v);
    t.set_window_len(v);
    t.set_checksum(c);
}

fn has_sack(options: &[u8]) -> bool {
    TcpOptionsIter::new(options).any(|o| matches!(o, Ok(TcpOption::Sack(_))))
}

/// Adds `delta` to every SACK edge in an options area (already known to parse).
fn shift_sack(options: &mut [u8], delta: u32) {
    let mut at = 0;
    while at < options.len() {
        match options[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&len) = options.get(at + 1) else { break };
                let len = usize::from(len);
                if len < 2 || at + len > options.len() {
                    break;
                }
                if kind == SACK_KIND {
                    for edge in options[at + 2..at + len].as_chunks_mut::<4>().0 {
                        *edge = u32::from_be_bytes(*edge).wrapping_add(delta).to_be_bytes();
                    }
                }
                at += len;
            }
        }
    }
}
