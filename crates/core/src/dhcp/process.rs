//! One datagram through the server: decoding and relay unwrapping (§19),
//! validation (§16, `validate.rs`), the link (§13.1, `link.rs`), the
//! failover state's say (RFC 8156 §8.1), then the exchange of its message
//! type (§18.3.x, one file each); the reply is encoded before any lease
//! record is written, so a message that gets no reply leaves no trace.

use super::confirm::confirm;
use super::information::information_reply;
use super::link::select_subnet;
use super::release::retire;
use super::renew::extend;
use super::request::{assign, Mode};
use super::validate::validate;
use super::{relay, Dhcpv6Server, Discard, Incoming, Outcome, Reply, CLIENT_PORT, SERVER_PORT};
use crate::lease::Lease;
use crate::policy::{LeasePolicy, Responsiveness, Retire};
use crate::time::UnixTime;
use duet_wire::option::{code, Status};
use duet_wire::{
    ClientMessage, DhcpOption, Duid, Message, MessageType, OptionsExt, RelayMessage, StatusCode,
};

/// The largest UDP payload over IPv6 without jumbograms (65,535 − 8).
const MAX_DATAGRAM: usize = 65_527;

/// The reply, and the lease records to write once it is known to encode
/// (not yet in the database).
pub(super) type Processed = Result<(ClientMessage<'static>, Vec<Lease>), Discard>;

/// Everything one message's processing needs.
pub(super) struct Ctx<'p, 'm> {
    pub(super) now: UnixTime,
    pub(super) client: &'m ClientMessage<'m>,
    /// The client's DUID (empty where a message may lack one).
    pub(super) duid: Vec<u8>,
    /// The subnet of the client's link (§13.1).
    pub(super) subnet: Option<usize>,
    /// The relationship sharing that subnet's pools.
    pub(super) rel: Option<usize>,
    /// The client's host reservation in that subnet (an index into its
    /// `reservations`).
    pub(super) reservation: Option<usize>,
    pub(super) policy: &'p dyn LeasePolicy,
}

pub(super) fn handle(
    srv: &mut Dhcpv6Server,
    now: UnixTime,
    inc: Incoming<'_>,
    policy: &dyn LeasePolicy,
) -> Outcome {
    let msg = match Message::parse(inc.payload) {
        Ok(m) => m,
        Err(e) => return Outcome::Dropped(Discard::Malformed(e)),
    };
    let Some((client, relays)) = msg.unwrap_relays() else {
        return Outcome::Dropped(Discard::Invalid("relay message without a relayed message"));
    };
    if !relay::all_forwards(&relays) {
        return Outcome::Dropped(Discard::NotForServer(MessageType::RelayRepl));
    }
    let mut seen = Seen::default();
    let processed = process(srv, now, &inc, client, &relays, policy, &mut seen);
    if let Some(c) = seen
        .subnet
        .and_then(|i| srv.subnets.get_mut(i))
        .map(|s| &mut s.counters)
    {
        c.seen = c.seen.saturating_add(1);
        if processed.is_ok() {
            c.answered = c.answered.saturating_add(1);
            c.last_answered = Some(now);
            if seen.rescued {
                c.rescued = c.rescued.saturating_add(1);
            }
        }
    }
    match processed {
        Err(d) => Outcome::Dropped(d),
        Ok((reply, planned)) => {
            let relayed = !relays.is_empty();
            let out = if relayed {
                relay::wrap(reply, &relays)
            } else {
                Message::Client(reply)
            };
            // The reply is encoded before any lease changes: a reply that
            // cannot be sent leaves no trace in the database (with the caps
            // of `ia.rs` only relays echoing huge Interface-Ids get here).
            let bytes = match out.to_vec() {
                Ok(b) if b.len() <= MAX_DATAGRAM => b,
                _ => return Outcome::Dropped(Discard::ReplyTooLarge),
            };
            // Planned records are for resources of our pools, and one
            // message plans each at most once, so the upserts succeed.
            let changes = planned
                .into_iter()
                .filter(|l| srv.db.upsert(l.clone()).is_ok())
                .collect();
            Outcome::Reply(Reply {
                bytes,
                to: inc.source,
                port: if relayed { SERVER_PORT } else { CLIENT_PORT },
                changes,
            })
        }
    }
}

/// Where a message was attributed, for the per-subnet counters.
#[derive(Debug, Default)]
struct Seen {
    /// The subnet of the client's link, once known.
    subnet: Option<usize>,
    /// Answered only because the client has been trying long enough.
    rescued: bool,
}

/// How long the client has been trying (RFC 8415 §21.9: hundredths of a
/// second; 0xffff means at least 655.35 s), if it says.
fn elapsed(client: &ClientMessage<'_>) -> Option<std::time::Duration> {
    client.options.iter().find_map(|o| match o {
        DhcpOption::ElapsedTime(cs) => Some(std::time::Duration::from_millis(
            u64::from(*cs).saturating_mul(10),
        )),
        _ => None,
    })
}

fn process(
    srv: &mut Dhcpv6Server,
    now: UnixTime,
    inc: &Incoming<'_>,
    client: &ClientMessage<'_>,
    relays: &[&RelayMessage<'_>],
    policy: &dyn LeasePolicy,
    seen: &mut Seen,
) -> Processed {
    use MessageType as T;
    let t = client.msg_type;
    if !matches!(
        t,
        T::Solicit
            | T::Request
            | T::Confirm
            | T::Renew
            | T::Rebind
            | T::Release
            | T::Decline
            | T::InformationRequest
    ) {
        return Err(Discard::NotForServer(t));
    }
    validate(srv.duid(), client)?;
    let direct_unicast = relays.is_empty() && !inc.multicast;
    if direct_unicast {
        match t {
            // §16: never legitimate by unicast; Information-request too
            // (digest D1: we never hand out OPTION_UNICAST).
            T::Solicit | T::Confirm | T::Rebind | T::InformationRequest => return Err(Discard::Unicast),
            // §18.4: tell the client to use multicast.
            _ => {
                let mut reply = reply_base(srv.duid(), client, MessageType::Reply);
                reply
                    .options
                    .push(status(StatusCode::UseMulticast, "use multicast"));
                return Ok((reply, Vec::new()));
            }
        }
    }
    let subnet = select_subnet(srv, inc, relays);
    seen.subnet = subnet;
    let rel = srv.subnet(subnet).and_then(|s| s.cfg.relationship);
    if let Some(r) = rel {
        match policy.responsiveness(r) {
            Responsiveness::Responsive => {}
            Responsiveness::RenewResponsive if client.options.server_id().is_some() => {}
            // RFC 7031 §4.7: a client that has been trying this long is
            // not reaching the server that should answer it.
            Responsiveness::RenewResponsive
                if matches!(t, T::Solicit | T::Rebind)
                    && policy
                        .rescue_after(r)
                        .is_some_and(|after| elapsed(client).is_some_and(|e| e >= after)) =>
            {
                seen.rescued = true;
            }
            _ => return Err(Discard::Unresponsive),
        }
    }
    let duid = client
        .options
        .client_id()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let ctx = Ctx {
        now,
        client,
        reservation: srv.reservation_for(subnet, &duid, relays),
        duid,
        subnet,
        rel,
        policy,
    };
    match t {
        T::InformationRequest => Ok((information_reply(srv, &ctx), Vec::new())),
        T::Confirm => confirm(srv, &ctx),
        _ if ctx.subnet.is_none() => Err(Discard::NoSubnet),
        T::Solicit => {
            let rapid = client.options.find(code::RAPID_COMMIT).is_some()
                && srv.subnet(ctx.subnet).is_some_and(|s| s.cfg.rapid_commit);
            assign(srv, &ctx, if rapid { Mode::RapidCommit } else { Mode::Advertise })
        }
        T::Request => assign(srv, &ctx, Mode::Request),
        T::Renew => extend(srv, &ctx, false),
        T::Rebind => extend(srv, &ctx, true),
        T::Release => retire(srv, &ctx, Retire::Released),
        T::Decline => retire(srv, &ctx, Retire::Declined),
        _ => Err(Discard::NotForServer(t)),
    }
}

/// A reply to `client` with this server's and the client's identifiers.
pub(super) fn reply_base(
    our: &Duid<'static>,
    client: &ClientMessage<'_>,
    msg_type: MessageType,
) -> ClientMessage<'static> {
    let mut reply = ClientMessage::new(msg_type, client.transaction_id);
    reply.options.push(DhcpOption::ServerId(our.clone()));
    if let Some(c) = client.options.client_id() {
        reply.options.push(DhcpOption::ClientId(c.clone().into_owned()));
    }
    reply
}

/// An OPTION_STATUS_CODE (§21.13).
pub(super) fn status(code: StatusCode, text: &'static str) -> DhcpOption<'static> {
    DhcpOption::StatusCode(Status::new(code, text))
}
