//! Proptest strategies for every wire type (feature `proptest`, and the
//! crate's own tests). Generated values respect the nesting scopes of
//! [`crate::option`], so `parse(emit(v)) == v` holds for all of them.

#![allow(missing_docs)]

use crate::duid::Duid;
use crate::failover::{FailoverMessage, StreamMessage};
use crate::message::{ClientMessage, Message, RelayMessage, MAX_RELAY_DEPTH};
use crate::name::DomainName;
use crate::option::{
    code, Auth, ClientFqdn, DhcpOption, IaAddr, IaNa, IaPd, IaPrefix, IaTa, LqRelayData, ReconfigureData,
    Status, VendorClass, VendorOpts, VendorSubOption, Vss,
};
use crate::types::{
    AbsTime, BindingStatus, FailoverMessageType, MessageType, ServerState, StatusCode, TransactionId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use std::borrow::Cow;
use std::net::Ipv6Addr;

pub fn bytes(max: usize) -> impl Strategy<Value = Cow<'static, [u8]>> {
    vec(any::<u8>(), 0..=max).prop_map(Cow::Owned)
}

pub fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

pub fn abs_time() -> impl Strategy<Value = AbsTime> {
    any::<u32>().prop_map(AbsTime)
}

pub fn duid() -> impl Strategy<Value = Duid<'static>> {
    vec(any::<u8>(), 3..=130).prop_map(|b| Duid::new(b).unwrap_or_else(|_| unreachable!()))
}

pub fn transaction_id() -> impl Strategy<Value = TransactionId> {
    (0..=TransactionId::MAX).prop_map(TransactionId::from_low_bits)
}

fn label() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=20)
}

/// A domain name of up to 5 labels; fully qualified or partial.
pub fn domain_name(fully_qualified: bool) -> impl Strategy<Value = DomainName<'static>> {
    vec(label(), 0..=5).prop_map(move |labels| {
        let mut wire = Vec::new();
        for l in labels {
            wire.push(l.len() as u8);
            wire.extend(l);
        }
        if fully_qualified {
            wire.push(0);
        }
        DomainName::parse_whole(&wire, 0)
            .map(DomainName::into_owned)
            .unwrap_or_else(|_| unreachable!())
    })
}

/// A code this crate keeps as `Unknown` in every scope.
pub fn unknown_code() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("known option code", |c| !code::KNOWN.contains(c))
}

/// Every non-container option.
pub fn leaf_option() -> BoxedStrategy<DhcpOption<'static>> {
    use DhcpOption as O;
    prop_oneof![
        duid().prop_map(O::ClientId),
        duid().prop_map(O::ServerId),
        vec(any::<u16>(), 0..5).prop_map(O::Oro),
        any::<u8>().prop_map(O::Preference),
        any::<u16>().prop_map(O::ElapsedTime),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u64>(), bytes(20)).prop_map(
            |(protocol, algorithm, rdm, replay_detection, info)| {
                O::Auth(Auth {
                    protocol,
                    algorithm,
                    rdm,
                    replay_detection,
                    info,
                })
            }
        ),
        ipv6().prop_map(O::Unicast),
        (any::<u16>(), bytes(30)).prop_map(|(c, message)| O::StatusCode(Status {
            code: StatusCode::from(c),
            message
        })),
        Just(O::RapidCommit),
        vec(bytes(10), 0..4).prop_map(O::UserClass),
        (any::<u32>(), vec(bytes(10), 0..4)).prop_map(|(enterprise_number, data)| O::VendorClass(
            VendorClass {
                enterprise_number,
                data
            }
        )),
        (any::<u32>(), vec((any::<u16>(), bytes(10)), 0..4)).prop_map(|(enterprise_number, subs)| {
            O::VendorOpts(VendorOpts {
                enterprise_number,
                options: subs
                    .into_iter()
                    .map(|(code, data)| VendorSubOption { code, data })
                    .collect(),
            })
        }),
        bytes(20).prop_map(O::InterfaceId),
        any::<u8>().prop_map(O::ReconfMsg),
        Just(O::ReconfAccept),
        vec(ipv6(), 0..4).prop_map(O::DnsServers),
        vec(domain_name(true), 0..3).prop_map(O::DomainList),
        any::<u32>().prop_map(O::InformationRefreshTime),
        (any::<u8>(), any::<bool>()).prop_flat_map(
            |(flags, fq)| domain_name(fq).prop_map(move |name| O::ClientFqdn(ClientFqdn { flags, name }))
        ),
        any::<u32>().prop_map(O::CltTime),
        (ipv6(), bytes(40)).prop_map(|(peer_address, relay_message)| O::LqRelayData(LqRelayData {
            peer_address,
            relay_message
        })),
        (any::<u8>(), bytes(10)).prop_map(|(vss_type, info)| O::Vss(Vss { vss_type, info })),
        any::<u32>().prop_map(O::SolMaxRt),
        any::<u32>().prop_map(O::InfMaxRt),
        abs_time().prop_map(O::LqBaseTime),
        any::<u8>().prop_map(|v| O::BindingStatus(BindingStatus::from(v))),
        any::<u16>().prop_map(O::ConnectFlags),
        any::<bool>().prop_flat_map(domain_name).prop_map(O::DnsHostName),
        any::<bool>().prop_flat_map(domain_name).prop_map(O::DnsZoneName),
        any::<u16>().prop_map(O::DnsFlags),
        abs_time().prop_map(O::ExpirationTime),
        any::<u32>().prop_map(O::MaxUnackedBndupd),
        any::<u32>().prop_map(O::Mclt),
        abs_time().prop_map(O::PartnerLifetime),
        abs_time().prop_map(O::PartnerLifetimeSent),
        abs_time().prop_map(O::PartnerDownTime),
        abs_time().prop_map(O::PartnerRawCltTime),
        (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| O::ProtocolVersion { major, minor }),
        any::<u32>().prop_map(O::KeepaliveTime),
        (abs_time(), bytes(16)).prop_map(|(reconfigure_time, key)| O::ReconfigureData(ReconfigureData {
            reconfigure_time,
            key
        })),
        "[a-zA-Z0-9 é-]{0,20}".prop_map(|s| O::RelationshipName(Cow::Owned(s))),
        any::<u8>().prop_map(O::ServerFlags),
        any::<u8>().prop_map(|v| O::ServerState(ServerState::from(v))),
        abs_time().prop_map(O::StartTimeOfState),
        abs_time().prop_map(O::StateExpirationTime),
        (unknown_code(), bytes(20)).prop_map(|(code, data)| O::Unknown { code, data }),
    ]
    .boxed()
}

/// An option that may appear in a scope of the given rank (see
/// [`crate::option`]): leaves everywhere, containers only below their rank.
pub fn option(scope_rank: u8) -> BoxedStrategy<DhcpOption<'static>> {
    use DhcpOption as O;
    let leaf = leaf_option();
    if scope_rank <= 1 {
        return leaf;
    }
    let inner = |rank: u8| vec(option(rank), 0..3);
    let mut arms: Vec<BoxedStrategy<DhcpOption<'static>>> = vec![leaf.clone(), leaf];
    // rank 1: DNS removal info
    arms.push(inner(1).prop_map(O::DnsRemovalInfo).boxed());
    if scope_rank > 2 {
        arms.push(
            (ipv6(), any::<u32>(), any::<u32>(), inner(2))
                .prop_map(|(address, preferred_lifetime, valid_lifetime, options)| {
                    O::IaAddr(IaAddr {
                        address,
                        preferred_lifetime,
                        valid_lifetime,
                        options,
                    })
                })
                .boxed(),
        );
        arms.push(
            (any::<u32>(), any::<u32>(), 0u8..=128, ipv6(), inner(2))
                .prop_map(
                    |(preferred_lifetime, valid_lifetime, prefix_len, prefix, options)| {
                        O::IaPrefix(IaPrefix {
                            preferred_lifetime,
                            valid_lifetime,
                            prefix_len,
                            prefix,
                            options,
                        })
                    },
                )
                .boxed(),
        );
    }
    if scope_rank > 3 {
        arms.push(
            (any::<u32>(), any::<u32>(), any::<u32>(), inner(3))
                .prop_map(|(iaid, t1, t2, options)| {
                    O::IaNa(IaNa {
                        iaid,
                        t1,
                        t2,
                        options,
                    })
                })
                .boxed(),
        );
        arms.push(
            (any::<u32>(), inner(3))
                .prop_map(|(iaid, options)| O::IaTa(IaTa { iaid, options }))
                .boxed(),
        );
        arms.push(
            (any::<u32>(), any::<u32>(), any::<u32>(), inner(3))
                .prop_map(|(iaid, t1, t2, options)| {
                    O::IaPd(IaPd {
                        iaid,
                        t1,
                        t2,
                        options,
                    })
                })
                .boxed(),
        );
    }
    if scope_rank > 4 {
        arms.push(inner(4).prop_map(O::ClientData).boxed());
    }
    proptest::strategy::Union::new(arms).boxed()
}

/// Options for the top level of a message.
pub fn message_options() -> impl Strategy<Value = Vec<DhcpOption<'static>>> {
    vec(option(5), 0..5)
}

/// A message type that uses the client/server header.
pub fn client_msg_type() -> impl Strategy<Value = MessageType> {
    any::<u8>()
        .prop_filter("relay or failover type", |t| !matches!(t, 12 | 13 | 24..=35))
        .prop_map(MessageType::from)
}

pub fn client_message() -> impl Strategy<Value = ClientMessage<'static>> {
    (client_msg_type(), transaction_id(), message_options()).prop_map(
        |(msg_type, transaction_id, options)| ClientMessage {
            msg_type,
            transaction_id,
            options,
        },
    )
}

/// A relay message wrapping `inner`, with the Relay Message option at a
/// random position among other top-level options.
pub fn relay_around(inner: Message<'static>) -> impl Strategy<Value = Message<'static>> {
    (
        any::<bool>(),
        any::<u8>(),
        ipv6(),
        ipv6(),
        message_options(),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            move |(forw, hop_count, link_address, peer_address, mut options, at)| {
                let pos = at.index(options.len().saturating_add(1));
                options.insert(pos, DhcpOption::RelayMsg(Box::new(inner.clone())));
                Message::Relay(RelayMessage {
                    msg_type: if forw {
                        MessageType::RelayForw
                    } else {
                        MessageType::RelayRepl
                    },
                    hop_count,
                    link_address,
                    peer_address,
                    options,
                })
            },
        )
}

/// A client message inside 0..=MAX_RELAY_DEPTH relay messages.
pub fn message() -> impl Strategy<Value = Message<'static>> {
    client_message()
        .prop_map(Message::Client)
        .prop_recursive(MAX_RELAY_DEPTH as u32, 64, 1, |inner| {
            inner.prop_flat_map(relay_around)
        })
}

pub fn failover_msg_type() -> impl Strategy<Value = FailoverMessageType> {
    (24u8..=35).prop_map(FailoverMessageType::from)
}

pub fn failover_message() -> impl Strategy<Value = FailoverMessage<'static>> {
    (
        failover_msg_type(),
        transaction_id(),
        abs_time(),
        message_options(),
    )
        .prop_map(|(msg_type, transaction_id, sent_time, options)| FailoverMessage {
            msg_type,
            transaction_id,
            sent_time,
            options,
        })
}

pub fn stream_message() -> impl Strategy<Value = StreamMessage<'static>> {
    prop_oneof![
        failover_message().prop_map(StreamMessage::Failover),
        (
            prop_oneof![Just(MessageType::StartTls), Just(MessageType::Reply)],
            transaction_id(),
            message_options()
        )
            .prop_map(
                |(msg_type, transaction_id, options)| StreamMessage::Tls(ClientMessage {
                    msg_type,
                    transaction_id,
                    options
                })
            ),
    ]
}
