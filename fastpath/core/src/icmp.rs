//! ICMP the director answers itself: echo requests to its own addresses.

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::{Icmpv4Message, Icmpv4Packet, Ipv4Packet};

/// Turns an ICMP echo request inside `ip` into the echo reply, in place (type and checksum
/// only; the caller swaps addresses). `Ok(false)` if it is some other ICMP message.
pub(crate) fn echo_reply_in_place(ip: &mut Ipv4Packet<&mut [u8]>) -> Result<bool, DropReason> {
    let mut icmp = Icmpv4Packet::new_checked(ip.payload_mut()).map_err(|_| DropReason::IcmpMalformed)?;
    if icmp.msg_type() != Icmpv4Message::EchoRequest {
        return Ok(false);
    }
    if !icmp.verify_checksum() {
        return Err(DropReason::IcmpBadChecksum);
    }
    let old_word = u16::from_be_bytes([u8::from(Icmpv4Message::EchoRequest), icmp.msg_code()]);
    let new_word = u16::from_be_bytes([u8::from(Icmpv4Message::EchoReply), 0]);
    let csum = checksum::update16(icmp.checksum(), old_word, new_word);
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.set_msg_code(0);
    icmp.set_checksum(csum);
    Ok(true)
}
