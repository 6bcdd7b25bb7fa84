//! The kernel filter of a quiet interface: a classic BPF socket filter
//! (`SO_ATTACH_FILTER`) that discards, before the server wakes up, client
//! messages it could not answer.
//!
//! A server answers only messages that carry its own DUID while the
//! relationship of a link is not responsive to new clients: a secondary in
//! NORMAL is RENEW-RESPONSIVE, and some states answer no one (RFC 8156 §3,
//! §8.1). Clients multicast every message to ff02::1:2 (RFC 8415 §13.1), so
//! without a filter the partner of the active server wakes up for each
//! Solicit and Request on the link only to drop it — on a shared machine
//! that delays the active server's Replies, and everywhere it costs the
//! partner a wake-up per datagram.
//!
//! The filter discards a datagram only when all of these hold; anything
//! else, including every message it cannot fully parse, is passed on to
//! duet, which decides and counts as before:
//! - it belongs to a quiet subnet (see
//!   [`duet_core::dhcp::Dhcpv6Server::quiet_links`]): from a link-local
//!   source on a quiet interface (the interface's first subnet is quiet),
//!   or from a global source inside a quiet prefix;
//! - it is not relayed (a relayed message's subnet is the relay's); and
//! - it is a Solicit, Confirm or Rebind (they never carry a Server
//!   Identifier, RFC 8415 §16.2, §16.5, §16.7: RENEW-RESPONSIVE drops them),
//!   or a Request, Renew, Release, Decline or Information-request whose
//!   Server Identifier, among its first [`MAX_OPTIONS`] options, is whole
//!   and another server's (§16.4 and the like: every server drops those).
//!
//! Discarded datagrams are not counted under `dropped`; the kernel counts
//! them in the socket's drop count, which `duet ctl status` reports as
//! `socket-drops` (with receive-buffer overflows).

use duet_core::net::Ipv6Prefix;
use socket2::SockFilter;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const LEN: u16 = 0x80;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const AND: u16 = 0x50;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGE: u16 = 0x30;
const K: u16 = 0x00;
const X: u16 = 0x08;
const TAX: u16 = 0x00;

/// `SKF_AD_OFF + SKF_AD_IFINDEX`: the arrival interface's index.
const AD_IFINDEX: u32 = (-0x1000i32 + 8) as u32;
/// `SKF_NET_OFF + 8`: the IPv6 source address in the network header.
const NET_SOURCE: u32 = (-0x10_0000i32 + 8) as u32;

/// Where the DHCPv6 message starts: a UDP socket's filter sees the datagram
/// from its UDP header on.
pub const PAYLOAD: u32 = 8;

/// Options looked at, at most, for a Server Identifier; a message whose
/// Server Identifier comes later is passed on.
pub const MAX_OPTIONS: usize = 12;

const ACCEPT: u32 = u32::MAX;
const DISCARD: u32 = 0;

/// Where a jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Accept,
    Discard,
    Label(usize),
}

/// One instruction before jump offsets are known.
enum Ins {
    Op(u16, u32),
    Jump(u16, u32, To, To),
    Label(usize),
}

/// Why no filter could be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// A jump would be longer than classic BPF allows (255 instructions).
    #[error("the socket filter is too long (a jump of {0} instructions)")]
    TooLong(usize),
    /// No interface is quiet: nothing to filter.
    #[error("no quiet interface")]
    Nothing,
}

/// Where the filter discards: the subnet of a client with a link-local
/// source is its interface's, that of one with a global source the subnet
/// containing it (see [`duet_core::dhcp::QuietLinks`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quiet {
    /// Indices of the quiet interfaces.
    pub ifindexes: Vec<u32>,
    /// Prefixes of the quiet subnets no responsive one overlaps.
    pub prefixes: Vec<Ipv6Prefix>,
}

/// The filter for `quiet`, for a server whose DUID is `duid` (its bytes, as
/// in the Server Identifier option).
pub fn program(quiet: &Quiet, duid: &[u8]) -> Result<Vec<Insn>, FilterError> {
    build(quiet, duid, LINK_LOCAL)
}

/// fe80::/10, as (mask, value) of the source address's first 16 bits.
const LINK_LOCAL: (u32, u32) = (0xffc0, 0xfe80);

/// [`program`] with the link-local test as a parameter (the tests use ::1,
/// since loopback has no link-local address).
fn build(quiet: &Quiet, duid: &[u8], link_local: (u32, u32)) -> Result<Vec<Insn>, FilterError> {
    if quiet.ifindexes.is_empty() && quiet.prefixes.is_empty() {
        return Err(FilterError::Nothing);
    }
    const MESSAGE: usize = 0;
    const SCAN: usize = 1;
    const COMPARE: usize = 2;
    const GLOBAL: usize = 3;
    const LINK: usize = 4;
    const NEXT_PREFIX: usize = 5; // + i
    let mut p = vec![
        // A link-local source (fe80::/10): the arrival interface is a quiet one.
        Ins::Op(LD | H | ABS, NET_SOURCE),
        Ins::Op(ALU | AND | K, link_local.0),
        Ins::Jump(JMP | JEQ | K, link_local.1, To::Label(LINK), To::Label(GLOBAL)),
        Ins::Label(LINK),
        Ins::Op(LD | W | ABS, AD_IFINDEX),
    ];
    for &i in &quiet.ifindexes {
        p.push(Ins::Jump(JMP | JEQ | K, i, To::Label(MESSAGE), To::Next));
    }
    p.push(Ins::Jump(JMP | JA, 0, To::Accept, To::Accept));
    // Any other source: it is in a quiet prefix.
    p.push(Ins::Label(GLOBAL));
    for (n, prefix) in quiet.prefixes.iter().enumerate() {
        let bits = u128::from(prefix.addr());
        let len = u32::from(prefix.len());
        let words = len.div_ceil(32);
        for w in 0..words {
            let shift = 96 - 32 * w;
            let value = u32::try_from((bits >> shift) & 0xffff_ffff).unwrap_or(0);
            let in_word = (len - 32 * w).min(32);
            let mask = u32::MAX.checked_shl(32 - in_word).unwrap_or(0);
            p.push(Ins::Op(LD | W | ABS, NET_SOURCE + 4 * w));
            if mask != u32::MAX {
                p.push(Ins::Op(ALU | AND | K, mask));
            }
            let matched = if w + 1 == words {
                To::Label(MESSAGE)
            } else {
                To::Next
            };
            p.push(Ins::Jump(
                JMP | JEQ | K,
                value & mask,
                matched,
                To::Label(NEXT_PREFIX + n),
            ));
        }
        if words == 0 {
            p.push(Ins::Jump(JMP | JA, 0, To::Label(MESSAGE), To::Label(MESSAGE)));
        }
        p.push(Ins::Label(NEXT_PREFIX + n));
    }
    p.push(Ins::Jump(JMP | JA, 0, To::Accept, To::Accept));
    p.push(Ins::Label(MESSAGE));
    // The message type, if there is one.
    p.push(Ins::Op(LD | W | LEN, 0));
    p.push(Ins::Jump(JMP | JGE | K, PAYLOAD + 4, To::Next, To::Accept));
    p.push(Ins::Op(LD | B | ABS, PAYLOAD));
    for t in [1, 4, 6] {
        // Solicit, Confirm, Rebind
        p.push(Ins::Jump(JMP | JEQ | K, t, To::Discard, To::Next));
    }
    for t in [3, 5, 8, 9, 11] {
        // Request, Renew, Release, Decline, Information-request
        p.push(Ins::Jump(JMP | JEQ | K, t, To::Label(SCAN), To::Next));
    }
    p.push(Ins::Jump(JMP | JA, 0, To::Accept, To::Accept));
    // Walk the options (X = offset of the next one) to the Server Identifier.
    p.push(Ins::Label(SCAN));
    p.push(Ins::Op(LDX | W | IMM, PAYLOAD + 4));
    for _ in 0..MAX_OPTIONS {
        // Stop (pass) unless a whole option header is there: len - 4 >= X.
        p.push(Ins::Op(LD | W | LEN, 0));
        p.push(Ins::Op(ALU | SUB | K, 4));
        p.push(Ins::Jump(JMP | JGE | X, 0, To::Next, To::Accept));
        p.push(Ins::Op(LD | H | IND, 0));
        p.push(Ins::Jump(JMP | JEQ | K, 2, To::Label(COMPARE), To::Next));
        p.push(Ins::Op(LD | H | IND, 2));
        p.push(Ins::Op(ALU | ADD | K, 4));
        p.push(Ins::Op(ALU | ADD | X, 0));
        p.push(Ins::Op(MISC | TAX, 0));
    }
    p.push(Ins::Jump(JMP | JA, 0, To::Accept, To::Accept));
    // A Server Identifier at X: another server's unless it is ours, byte
    // for byte (a truncated one is passed on, for duet to count).
    p.push(Ins::Label(COMPARE));
    let len = u32::try_from(duid.len()).map_err(|_| FilterError::TooLong(duid.len()))?;
    p.push(Ins::Op(LD | H | IND, 2));
    p.push(Ins::Jump(JMP | JEQ | K, len, To::Next, To::Discard));
    // The whole identifier is there: len - (4 + L) >= X, without wrapping.
    p.push(Ins::Op(LD | W | LEN, 0));
    p.push(Ins::Jump(JMP | JGE | K, 4 + len, To::Next, To::Accept));
    p.push(Ins::Op(ALU | SUB | K, 4 + len));
    p.push(Ins::Jump(JMP | JGE | X, 0, To::Next, To::Accept));
    let mut at = 0usize;
    while at < duid.len() {
        let rest = duid.get(at..).unwrap_or_default();
        let (size, n) = match rest.len() {
            4.. => (W, 4),
            2 | 3 => (H, 2),
            _ => (B, 1),
        };
        let value = rest.iter().take(n).fold(0u32, |v, b| (v << 8) | u32::from(*b));
        let offset = u32::try_from(4 + at).map_err(|_| FilterError::TooLong(at))?;
        p.push(Ins::Op(LD | size | IND, offset));
        p.push(Ins::Jump(JMP | JEQ | K, value, To::Next, To::Discard));
        at += n;
    }
    p.push(Ins::Jump(JMP | JA, 0, To::Accept, To::Accept));
    assemble(&p)
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Forward jump if true.
    pub jt: u8,
    /// Forward jump if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Attaches `prog` to `sock` (replacing any filter), or detaches the
/// filter when `prog` is `None`.
pub fn apply(sock: &impl std::os::fd::AsFd, prog: Option<&[Insn]>) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(sock);
    match prog {
        Some(p) => {
            let f: Vec<SockFilter> = p
                .iter()
                .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
                .collect();
            sock.attach_filter(&f)
        }
        None => match sock.detach_filter() {
            // ENOENT: no filter was attached.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(()),
            r => r,
        },
    }
}

/// Resolves labels and jumps into instructions, with `ret ACCEPT` and
/// `ret DISCARD` at the end.
fn assemble(p: &[Ins]) -> Result<Vec<Insn>, FilterError> {
    let mut labels = Vec::new();
    let mut n = 0usize;
    for ins in p {
        match ins {
            Ins::Label(l) => {
                if labels.len() <= *l {
                    labels.resize(*l + 1, 0);
                }
                if let Some(slot) = labels.get_mut(*l) {
                    *slot = n;
                }
            }
            _ => n += 1,
        }
    }
    let (accept, discard) = (n, n + 1);
    let mut out = Vec::with_capacity(n + 2);
    for ins in p {
        let here = out.len();
        let distance = |to: To| -> usize {
            let target = match to {
                To::Next => here + 1,
                To::Accept => accept,
                To::Discard => discard,
                To::Label(l) => labels.get(l).copied().unwrap_or(accept),
            };
            target.saturating_sub(here + 1)
        };
        let short = |to: To| u8::try_from(distance(to)).map_err(|_| FilterError::TooLong(distance(to)));
        match *ins {
            Ins::Label(_) => {}
            Ins::Op(code, k) => out.push(Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            }),
            // An unconditional jump's offset is its operand.
            Ins::Jump(code, _, t, _) if code == JMP | JA => out.push(Insn {
                code,
                jt: 0,
                jf: 0,
                k: u32::try_from(distance(t)).map_err(|_| FilterError::TooLong(distance(t)))?,
            }),
            Ins::Jump(code, k, t, f) => out.push(Insn {
                code,
                jt: short(t)?,
                jf: short(f)?,
                k,
            }),
        }
    }
    out.push(Insn {
        code: RET | K,
        jt: 0,
        jf: 0,
        k: ACCEPT,
    });
    out.push(Insn {
        code: RET | K,
        jt: 0,
        jf: 0,
        k: DISCARD,
    });
    Ok(out)
}

#[cfg(test)]
mod tests;
