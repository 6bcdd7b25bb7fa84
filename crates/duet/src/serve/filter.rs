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
//!   [`duet_core::node::Node::quiet_links`]): a client's own
//!   message from a link-local source on a quiet interface (the
//!   interface's first subnet is quiet) or from a global source inside a
//!   quiet prefix; or a Relay-forward from a single relay whose
//!   link-address is inside a quiet prefix, its Relay Message among its
//!   first [`MAX_RELAY_OPTIONS`] options (relay chains are passed on); and
//! - the client's message is a Solicit, Confirm or Rebind (they never carry a Server
//!   Identifier, RFC 8415 §16.2, §16.5, §16.7: RENEW-RESPONSIVE drops them),
//!   or a Request, Renew, Release, Decline or Information-request whose
//!   Server Identifier, among its first [`MAX_OPTIONS`] options, is whole
//!   and another server's (§16.4 and the like: every server drops those);
//!   and
//! - it is not a stranded client's, when the rescue of stranded clients
//!   (RFC 7031 §4.7) is on ([`Quiet::rescue_after`]): a Solicit, Request or
//!   Rebind whose Elapsed Time option (RFC 8415 §21.9), among its first
//!   [`MAX_OPTIONS`] options, is whole (length 2, inside the message) and
//!   at least the threshold is passed on whatever else it holds (another
//!   server's identifier included: duet decides). An Elapsed Time further
//!   on, truncated or of another length rescues nothing: the message
//!   follows the rules above. Confirm is never rescued.
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
const TXA: u16 = 0x80;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const MEM: u16 = 0x60;
/// Scratch memory: where the options being walked end, a saved X (the
/// Relay Message option, then the client message's first option), and the
/// client message's type.
const M_END: u32 = 0;
const M_SAVE: u32 = 1;
const M_TYPE: u32 = 2;

/// `SKF_AD_OFF + SKF_AD_IFINDEX`: the arrival interface's index.
const AD_IFINDEX: u32 = (-0x1000i32 + 8) as u32;
/// `SKF_NET_OFF + 8`: the IPv6 source address in the network header.
const NET_SOURCE: u32 = (-0x10_0000i32 + 8) as u32;

/// Where the DHCPv6 message starts: a UDP socket's filter sees the datagram
/// from its UDP header on.
pub const PAYLOAD: u32 = 8;

/// Options looked at, at most, for a Server Identifier (a message whose
/// Server Identifier comes later is passed on) or for an Elapsed Time (one
/// that comes later rescues nothing).
pub const MAX_OPTIONS: usize = 12;

/// Options of a Relay-forward looked at, at most, for its Relay Message.
pub const MAX_RELAY_OPTIONS: usize = 8;

/// Length of a relay message's header (msg-type, hop-count, link-address,
/// peer-address; RFC 8415 §9).
const RELAY_HEADER: u32 = 34;

const ACCEPT: u32 = u32::MAX;
const DISCARD: u32 = 0;

/// Where a jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
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
    /// A jump backwards or to no label (a bug in the program's writer).
    #[error("the socket filter has a jump backwards or to nowhere")]
    BadJump,
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
    /// The rescue of stranded clients (RFC 7031 §4.7): a Solicit, Request
    /// or Rebind whose Elapsed Time is at least this many hundredths of a
    /// second is passed on whatever else it holds. `None`: no rescue.
    pub rescue_after: Option<u16>,
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
    // Block order matters beyond jumping forward: the kernel checks that
    // scratch memory is written before it is read by following the program
    // in order, returns included (net/core/filter.c,
    // check_load_and_stores), where a return leaves the state as the jump
    // before it did. So each block that reads scratch memory starts after
    // a jump (returns may lie between), and every jump to it is taken with
    // the cells it reads written (the tests replicate the check).
    let mut a = Asm::default();
    let compare = a.label();

    // ---- which message: a relayed one, or a client's own.
    let (relay, link, global, to_direct, direct) = (a.label(), a.label(), a.label(), a.label(), a.label());
    let accept0 = a.label();
    a.op(LD | W | LEN, 0);
    a.jump(JGE | K, PAYLOAD + 4, To::Next, To::Label(accept0));
    a.op(LD | B | ABS, PAYLOAD);
    a.jump(JEQ | K, 12, To::Label(relay), To::Next);
    // A link-local source (fe80::/10): the arrival interface is a quiet one.
    a.op(LD | H | ABS, NET_SOURCE);
    a.op(ALU | AND | K, link_local.0);
    a.jump(JEQ | K, link_local.1, To::Label(link), To::Label(global));
    a.place(link);
    a.op(LD | W | ABS, AD_IFINDEX);
    for &i in &quiet.ifindexes {
        a.jump(JEQ | K, i, To::Label(to_direct), To::Next);
    }
    a.goto(To::Label(accept0));
    // Any other source: it is in a quiet prefix.
    a.place(global);
    a.prefix_match(
        NET_SOURCE,
        &quiet.prefixes,
        To::Label(to_direct),
        To::Label(accept0),
    );
    a.place(to_direct);
    a.goto(To::Label(direct));
    a.place(accept0);
    a.op(RET | K, ACCEPT);

    // ---- a Relay-forward from one relay (RFC 8415 §9): its subnet is the
    // one containing its link-address, a zero one being ignored (§13.1);
    // deeper chains are passed on.
    let (accept2, specified, options, relayed) = (a.label(), a.label(), a.label(), a.label());
    let dispatch = a.label();
    a.place(relay);
    a.op(LD | W | LEN, 0);
    a.jump(JGE | K, PAYLOAD + RELAY_HEADER + 4, To::Next, To::Label(accept2));
    // An unspecified link-address selects no subnet by address.
    for w in 0..4 {
        a.op(LD | W | ABS, PAYLOAD + 2 + 4 * w);
        let none = if w == 3 { To::Label(accept2) } else { To::Next };
        a.jump(JEQ | K, 0, none, To::Label(specified));
    }
    a.place(specified);
    a.prefix_match(
        PAYLOAD + 2,
        &quiet.prefixes,
        To::Label(options),
        To::Label(accept2),
    );
    // Walk the relay's options to its Relay Message.
    a.place(options);
    a.op(LDX | W | IMM, PAYLOAD + RELAY_HEADER);
    a.find_option(
        End::Datagram,
        9,
        MAX_RELAY_OPTIONS,
        To::Label(relayed),
        To::Label(accept2),
    );
    // The relayed message is at X + 4 and ends at X + 4 + its length, which
    // must be inside the datagram and hold at least its 4-byte header.
    a.place(relayed);
    a.op(LD | H | IND, 2);
    a.jump(JGE | K, 4, To::Next, To::Label(accept2));
    a.op(ALU | ADD | K, 4);
    a.op(ALU | ADD | X, 0);
    a.op(ST, M_END);
    a.op(STX, M_SAVE);
    a.op(MISC | TAX, 0);
    a.op(LD | W | LEN, 0);
    a.jump(JGE | X, 0, To::Next, To::Label(accept2));
    // Its type in A, X at its options (X + 8).
    a.op(LDX | W | MEM, M_SAVE);
    a.op(LD | B | IND, 4);
    a.op(ST, M_TYPE);
    a.op(MISC | TXA, 0);
    a.op(ALU | ADD | K, 8);
    a.op(MISC | TAX, 0);
    a.op(LD | MEM, M_TYPE);
    a.goto(To::Label(dispatch));
    a.place(accept2);
    a.op(RET | K, ACCEPT);

    // ---- a client's own message: its options end with the datagram.
    a.place(direct);
    a.op(LD | W | LEN, 0);
    a.op(ST, M_END);
    a.op(LDX | W | IMM, PAYLOAD + 4);
    a.op(LD | B | ABS, PAYLOAD);

    // ---- the client's message, relayed or not: its type in A, X at its
    // first option, the end of its options in M_END.
    let (scan, accept1, discard1) = (a.label(), a.label(), a.label());
    a.place(dispatch);
    match quiet.rescue_after {
        None => a.message_type(To::Label(scan), To::Label(discard1), To::Label(accept1), None),
        Some(threshold) => {
            // Solicit, Request and Rebind first go through the rescue test
            // (RFC 7031 §4.7), then on to their usual fate: the type and the
            // first option are kept for it.
            let (rescue, found, after) = (a.label(), a.label(), a.label());
            a.op(ST, M_TYPE);
            a.op(STX, M_SAVE);
            a.message_type(
                To::Label(scan),
                To::Label(discard1),
                To::Label(accept1),
                Some(To::Label(rescue)),
            );
            // An Elapsed Time among the first options, whole (length 2, its
            // value before the end) and at least the threshold: accepted.
            a.place(rescue);
            a.find_option(End::Saved, 8, MAX_OPTIONS, To::Label(found), To::Label(after));
            a.place(found);
            a.op(LD | H | IND, 2);
            a.jump(JEQ | K, 2, To::Next, To::Label(after));
            // end - 6 >= X (end is at least 12: no wrapping).
            a.op(LD | MEM, M_END);
            a.op(ALU | SUB | K, 6);
            a.jump(JGE | X, 0, To::Next, To::Label(after));
            a.op(LD | H | IND, 4);
            a.jump(
                JGE | K,
                u32::from(threshold),
                To::Label(accept1),
                To::Label(after),
            );
            // Not rescued: a Request names its server, Solicit and Rebind
            // are discarded.
            a.place(after);
            a.op(LDX | W | MEM, M_SAVE);
            a.op(LD | MEM, M_TYPE);
            a.jump(JEQ | K, 3, To::Label(scan), To::Label(discard1));
        }
    }
    a.place(accept1);
    a.op(RET | K, ACCEPT);
    a.place(discard1);
    a.op(RET | K, DISCARD);

    // ---- walk the options from X to M_END, to the Server Identifier.
    let (accept3, discard3) = (a.label(), a.label());
    a.place(scan);
    a.find_option(End::Saved, 2, MAX_OPTIONS, To::Label(compare), To::Label(accept3));
    // A Server Identifier at X: another server's unless it is ours, byte
    // for byte (a truncated one is passed on, for duet to count).
    a.place(compare);
    let len = u32::try_from(duid.len()).map_err(|_| FilterError::TooLong(duid.len()))?;
    a.op(LD | H | IND, 2);
    a.jump(JEQ | K, len, To::Next, To::Label(discard3));
    // The whole identifier is there: end - (4 + L) >= X, without wrapping.
    a.op(LD | MEM, M_END);
    a.jump(JGE | K, 4 + len, To::Next, To::Label(accept3));
    a.op(ALU | SUB | K, 4 + len);
    a.jump(JGE | X, 0, To::Next, To::Label(accept3));
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
        a.op(LD | size | IND, offset);
        a.jump(JEQ | K, value, To::Next, To::Label(discard3));
        at += n;
    }
    a.place(accept3);
    a.op(RET | K, ACCEPT);
    a.place(discard3);
    a.op(RET | K, DISCARD);
    assemble(&a.p)
}

/// Where the options being walked end.
#[derive(Clone, Copy)]
enum End {
    /// With the datagram.
    Datagram,
    /// At the offset kept in M_END.
    Saved,
}

/// A program being written: instructions with symbolic jumps.
#[derive(Default)]
struct Asm {
    p: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: usize) {
        self.p.push(Ins::Label(l));
    }
    fn op(&mut self, code: u16, k: u32) {
        self.p.push(Ins::Op(code, k));
    }
    /// A conditional jump (`code` without the class).
    fn jump(&mut self, code: u16, k: u32, t: To, f: To) {
        self.p.push(Ins::Jump(JMP | code, k, t, f));
    }
    fn goto(&mut self, t: To) {
        self.p.push(Ins::Jump(JMP | JA, 0, t, t));
    }
    /// Walks at most `max` options from X to the first with `code`: jumps
    /// to `found` with X at it, or to `none` when an option header would not
    /// fit before the end (the datagram's, or the one kept in M_END; at
    /// least 12, so `end - 4` cannot wrap) or none matched.
    fn find_option(&mut self, end: End, code: u32, max: usize, found: To, none: To) {
        for _ in 0..max {
            match end {
                End::Datagram => self.op(LD | W | LEN, 0),
                End::Saved => self.op(LD | MEM, M_END),
            }
            self.op(ALU | SUB | K, 4);
            self.jump(JGE | X, 0, To::Next, none);
            self.op(LD | H | IND, 0);
            self.jump(JEQ | K, code, found, To::Next);
            self.next_option();
        }
        self.goto(none);
    }

    /// X += 4 + the length of the option at X.
    fn next_option(&mut self) {
        self.op(LD | H | IND, 2);
        self.op(ALU | ADD | K, 4);
        self.op(ALU | ADD | X, 0);
        self.op(MISC | TAX, 0);
    }
    /// With the message type in A: Solicit, Confirm and Rebind go to
    /// `discard` (they never carry a Server Identifier, which a
    /// RENEW-RESPONSIVE server needs), the types that name their server to
    /// `scan`, everything else to `accept`; but with a `rescue` test,
    /// Solicit, Request and Rebind go to it instead.
    fn message_type(&mut self, scan: To, discard: To, accept: To, rescue: Option<To>) {
        // Solicit, Confirm, Rebind; Request, Renew, Release, Decline,
        // Information-request.
        let (discarded, named): (&[u32], &[u32]) = match rescue {
            None => (&[1, 4, 6], &[3, 5, 8, 9, 11]),
            Some(rescue) => {
                for t in [1, 3, 6] {
                    self.jump(JEQ | K, t, rescue, To::Next);
                }
                (&[4], &[5, 8, 9, 11])
            }
        };
        for &t in discarded {
            self.jump(JEQ | K, t, discard, To::Next);
        }
        for &t in named {
            self.jump(JEQ | K, t, scan, To::Next);
        }
        self.goto(accept);
    }
    /// Jumps to `matched` if the address at `base` (absolute offset) is in
    /// one of `prefixes`, else to `none`.
    fn prefix_match(&mut self, base: u32, prefixes: &[Ipv6Prefix], matched: To, none: To) {
        for prefix in prefixes {
            let next = self.label();
            let bits = u128::from(prefix.addr());
            let len = u32::from(prefix.len());
            let words = len.div_ceil(32);
            for w in 0..words {
                let value = u32::try_from((bits >> (96 - 32 * w)) & 0xffff_ffff).unwrap_or(0);
                let in_word = (len - 32 * w).min(32);
                let mask = u32::MAX.checked_shl(32 - in_word).unwrap_or(0);
                self.op(LD | W | ABS, base.wrapping_add(4 * w));
                if mask != u32::MAX {
                    self.op(ALU | AND | K, mask);
                }
                let hit = if w + 1 == words { matched } else { To::Next };
                self.jump(JEQ | K, value & mask, hit, To::Label(next));
            }
            if words == 0 {
                self.goto(matched);
            }
            self.place(next);
        }
        self.goto(none);
    }
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
    let mut labels: Vec<Option<usize>> = Vec::new();
    let mut n = 0usize;
    for ins in p {
        match ins {
            Ins::Label(l) => {
                if labels.len() <= *l {
                    labels.resize(*l + 1, None);
                }
                if let Some(slot) = labels.get_mut(*l) {
                    *slot = Some(n);
                }
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    for ins in p {
        let here = out.len();
        // Classic BPF jumps only forward.
        let distance = |to: To| -> Result<usize, FilterError> {
            let target = match to {
                To::Next => Some(here + 1),
                To::Label(l) => labels.get(l).copied().flatten(),
            };
            target
                .and_then(|t| t.checked_sub(here + 1))
                .ok_or(FilterError::BadJump)
        };
        let short = |to: To| -> Result<u8, FilterError> {
            let d = distance(to)?;
            u8::try_from(d).map_err(|_| FilterError::TooLong(d))
        };
        match *ins {
            Ins::Label(_) => {}
            Ins::Op(code, k) => out.push(Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            }),
            // An unconditional jump's offset is its operand.
            Ins::Jump(code, _, t, _) if code == JMP | JA => {
                let d = distance(t)?;
                out.push(Insn {
                    code,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(d).map_err(|_| FilterError::TooLong(d))?,
                })
            }
            Ins::Jump(code, k, t, f) => out.push(Insn {
                code,
                jt: short(t)?,
                jf: short(f)?,
                k,
            }),
        }
    }
    // Every path ends in a return: the last instruction is one.
    match out.last() {
        Some(i) if i.code == RET | K => Ok(out),
        _ => Err(FilterError::BadJump),
    }
}

#[cfg(test)]
mod tests;
