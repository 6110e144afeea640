//! Byte vectors written by hand from PROTOCOL.md §7 (each is checked against the official
//! JavaScript implementation by e2e/tests/messagepack-vectors.test.mjs, which reads the same
//! table from `vectors.json`).

use super::*;

/// The shared table: `[name, hex of the framed message]`.
const VECTORS: &str = include_str!("vectors.json");

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn vector(name: &str) -> Vec<u8> {
    let table: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let entry = table
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == name);
    hex(entry.unwrap_or_else(|| panic!("no vector {name}"))["hex"]
        .as_str()
        .unwrap())
}

fn raw(bytes: &[u8]) -> Payload {
    Payload::MessagePack(Bytes::copy_from_slice(bytes))
}

fn parse_one(bytes: &[u8]) -> HubMessage {
    match MessagePackHubProtocol.parse(bytes).unwrap() {
        Parsed::Message(message, consumed) => {
            assert_eq!(consumed, bytes.len());
            message
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

fn write_one(message: &HubMessage) -> Vec<u8> {
    let mut out = Vec::new();
    MessagePackHubProtocol.write(message, &mut out).unwrap();
    out
}

fn invocation(id: Option<&str>, target: &str, arguments: &[u8], stream_ids: &[&str]) -> HubMessage {
    HubMessage::Invocation(Invocation {
        headers: Headers::new(),
        invocation_id: id.map(str::to_owned),
        target: target.into(),
        arguments: raw(arguments),
        stream_ids: stream_ids.iter().map(|id| id.to_string()).collect(),
    })
}

fn completion(id: &str, outcome: CompletionOutcome) -> HubMessage {
    HubMessage::Completion(Completion {
        headers: Headers::new(),
        invocation_id: id.into(),
        outcome,
    })
}

#[test]
fn five_element_invocation_from_javascript() {
    let message = parse_one(&vector("invocation-js"));
    assert_eq!(
        message,
        invocation(Some("0"), "Echo", &[0x91, 0xa1, 0x78], &[])
    );
}

#[test]
fn server_invocation_has_six_elements_and_nil_id() {
    let message = invocation(None, "Message", &[0x91, 0xa2, 0x68, 0x69], &[]);
    assert_eq!(write_one(&message), vector("invocation-server"));
    assert_eq!(parse_one(&vector("invocation-server")), message);
}

#[test]
fn invocation_with_headers_and_stream_ids_round_trips() {
    let mut message = invocation(Some("0"), "T", &[0x90], &["s"]);
    if let HubMessage::Invocation(invocation) = &mut message {
        invocation.headers.insert("a".into(), "b".into());
    }
    assert_eq!(write_one(&message), vector("invocation-headers"));
    assert_eq!(parse_one(&vector("invocation-headers")), message);
}

#[test]
fn completions_with_their_result_kinds() {
    let cases = [
        (
            "completion-result",
            completion("0", CompletionOutcome::Result(raw(&[0xa2, 0x68, 0x69]))),
        ),
        ("completion-void", completion("1", CompletionOutcome::Void)),
        (
            "completion-error",
            completion("2", CompletionOutcome::Error("boom".into())),
        ),
    ];
    for (name, message) in cases {
        assert_eq!(write_one(&message), vector(name), "{name}");
        assert_eq!(parse_one(&vector(name)), message, "{name}");
    }
}

#[test]
fn stream_item_stream_invocation_and_cancel_round_trip() {
    let item = HubMessage::StreamItem(StreamItem {
        headers: Headers::new(),
        invocation_id: "3".into(),
        item: raw(&[0x07]),
    });
    let stream = HubMessage::StreamInvocation(StreamInvocation {
        headers: Headers::new(),
        invocation_id: "1".into(),
        target: "Stream".into(),
        arguments: raw(&[0x90]),
        stream_ids: vec![],
    });
    let cancel = HubMessage::CancelInvocation(CancelInvocation {
        headers: Headers::new(),
        invocation_id: "1".into(),
    });
    for (name, message) in [
        ("stream-item", item),
        ("stream-invocation", stream),
        ("cancel", cancel),
    ] {
        assert_eq!(write_one(&message), vector(name), "{name}");
        assert_eq!(parse_one(&vector(name)), message, "{name}");
    }
}

#[test]
fn ping_close_ack_and_sequence() {
    assert_eq!(write_one(&HubMessage::Ping), vector("ping"));
    assert_eq!(parse_one(&vector("ping")), HubMessage::Ping);
    let plain = HubMessage::Close(Close::default());
    assert_eq!(write_one(&plain), vector("close"));
    let with_error = HubMessage::Close(Close {
        error: Some("x".into()),
        allow_reconnect: true,
    });
    assert_eq!(write_one(&with_error), vector("close-error"));
    assert_eq!(parse_one(&vector("close-error")), with_error);
    assert_eq!(parse_one(&vector("close-js")), plain);
    let ack = HubMessage::Ack(Ack { sequence_id: 12 });
    let sequence = HubMessage::Sequence(Sequence { sequence_id: 5 });
    assert_eq!(write_one(&ack), vector("ack"));
    assert_eq!(write_one(&sequence), vector("sequence"));
    assert_eq!(parse_one(&vector("ack")), ack);
    assert_eq!(parse_one(&vector("sequence")), sequence);
}

#[test]
fn any_integer_width_reads_as_a_number() {
    // Ack with its id as u8, u16, u32, u64 and i64.
    for body in [
        &[0x92, 0x08, 0xcc, 0x0c][..],
        &[0x92, 0x08, 0xcd, 0x00, 0x0c],
        &[0x92, 0x08, 0xce, 0, 0, 0, 0x0c],
        &[0x92, 0x08, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x0c],
        &[0x92, 0x08, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x0c],
    ] {
        let mut framed = vec![body.len() as u8];
        framed.extend_from_slice(body);
        assert_eq!(parse_one(&framed), HubMessage::Ack(Ack { sequence_id: 12 }));
    }
}

#[test]
fn partial_prefixes_and_bodies_wait_and_many_messages_parse_in_turn() {
    let mut buffer = vector("ping");
    buffer.extend(vector("completion-void"));
    buffer.extend(vector("invocation-js"));
    let mut rest = &buffer[..];
    let mut seen = 0;
    while !rest.is_empty() {
        for cut in 0..rest.len().min(3) {
            assert_eq!(
                MessagePackHubProtocol.parse(&rest[..cut]).unwrap(),
                Parsed::Incomplete
            );
        }
        let Parsed::Message(_, consumed) = MessagePackHubProtocol.parse(rest).unwrap() else {
            panic!()
        };
        rest = &rest[consumed..];
        seen += 1;
    }
    assert_eq!(seen, 3);
    let body = vector("invocation-js");
    assert_eq!(
        MessagePackHubProtocol
            .parse(&body[..body.len() - 1])
            .unwrap(),
        Parsed::Incomplete
    );
}

#[test]
fn unknown_types_are_skipped_and_short_arrays_refused() {
    assert_eq!(
        MessagePackHubProtocol.parse(&[0x02, 0x91, 0x63]).unwrap(),
        Parsed::Ignored(3)
    );
    let error = MessagePackHubProtocol
        .parse(&[0x03, 0x92, 0x01, 0x80])
        .unwrap_err();
    assert_eq!(error.to_string(), "Insufficient items in Invocation array.");
}

#[test]
fn lying_lengths_are_refused_without_allocating_for_them() {
    // An arguments array that declares 2^32-1 elements in a 10-byte message.
    let body = [
        0x95, 0x01, 0x80, 0xc0, 0xa1, 0x41, 0xdd, 0xff, 0xff, 0xff, 0xff,
    ];
    let mut framed = vec![body.len() as u8];
    framed.extend_from_slice(&body);
    assert!(MessagePackHubProtocol.parse(&framed).is_err());
    assert!(array_elements(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn a_json_value_cannot_be_written_as_messagepack() {
    let message = HubMessage::StreamItem(StreamItem {
        headers: Headers::new(),
        invocation_id: "1".into(),
        item: Payload::json("1").unwrap(),
    });
    let mut out = vec![0xaa];
    assert!(MessagePackHubProtocol.write(&message, &mut out).is_err());
}
