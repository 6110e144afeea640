//! Byte vectors written by hand from PROTOCOL.md §6, in both directions.

use super::*;

const RS: char = '\u{1e}';

fn parse_one(text: &str) -> HubMessage {
    match JsonHubProtocol.parse(text.as_bytes()).unwrap() {
        Parsed::Message(message, consumed) => {
            assert_eq!(consumed, text.len());
            message
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

fn write_one(message: &HubMessage) -> String {
    let mut out = Vec::new();
    JsonHubProtocol.write(message, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn json(text: &str) -> Payload {
    Payload::json(text).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn invocation_from_the_javascript_client_with_type_last() {
    let message = parse_one(&format!(
        r#"{{"target":"Echo","arguments":["x",1],"invocationId":"0","type":1}}{RS}"#
    ));
    assert_eq!(
        message,
        HubMessage::Invocation(Invocation {
            headers: Headers::new(),
            invocation_id: Some("0".into()),
            target: "Echo".into(),
            arguments: json(r#"["x",1]"#),
            stream_ids: vec![],
        })
    );
}

#[test]
fn invocation_with_headers_and_stream_ids_round_trips() {
    let message = HubMessage::Invocation(Invocation {
        headers: headers(&[("traceparent", "00-ab")]),
        invocation_id: Some("7".into()),
        target: "Upload".into(),
        arguments: json("[]"),
        stream_ids: vec!["1".into(), "2".into()],
    });
    let text = format!(
        r#"{{"type":1,"headers":{{"traceparent":"00-ab"}},"invocationId":"7","target":"Upload","arguments":[],"streamIds":["1","2"]}}{RS}"#
    );
    assert_eq!(write_one(&message), text);
    assert_eq!(parse_one(&text), message);
}

#[test]
fn non_blocking_invocation_written_without_id() {
    let message = HubMessage::Invocation(Invocation {
        headers: Headers::new(),
        invocation_id: None,
        target: "Message".into(),
        arguments: json(r#"["hi"]"#),
        stream_ids: vec![],
    });
    assert_eq!(
        write_one(&message),
        format!(r#"{{"type":1,"target":"Message","arguments":["hi"]}}{RS}"#)
    );
}

#[test]
fn empty_invocation_id_means_non_blocking() {
    let message = parse_one(&format!(
        r#"{{"type":1,"invocationId":"","target":"A","arguments":[]}}{RS}"#
    ));
    let HubMessage::Invocation(invocation) = message else {
        panic!()
    };
    assert_eq!(invocation.invocation_id, None);
}

#[test]
fn stream_item_round_trips_including_null_item() {
    let message = HubMessage::StreamItem(StreamItem {
        headers: Headers::new(),
        invocation_id: "3".into(),
        item: json("null"),
    });
    let text = format!(r#"{{"type":2,"invocationId":"3","item":null}}{RS}"#);
    assert_eq!(write_one(&message), text);
    assert_eq!(
        parse_one(&format!(
            r#"{{"item":null,"invocationId":"3","type":2}}{RS}"#
        )),
        message
    );
}

#[test]
fn completion_with_result_void_and_error() {
    let cases = [
        (
            CompletionOutcome::Result(json(r#""hi""#)),
            r#"{"type":3,"invocationId":"0","result":"hi"}"#,
        ),
        (CompletionOutcome::Void, r#"{"type":3,"invocationId":"0"}"#),
        (
            CompletionOutcome::Error("boom".into()),
            r#"{"type":3,"invocationId":"0","error":"boom"}"#,
        ),
        (
            CompletionOutcome::Result(json("null")),
            r#"{"type":3,"invocationId":"0","result":null}"#,
        ),
    ];
    for (outcome, text) in cases {
        let message = HubMessage::Completion(Completion {
            headers: Headers::new(),
            invocation_id: "0".into(),
            outcome,
        });
        let text = format!("{text}{RS}");
        assert_eq!(write_one(&message), text);
        assert_eq!(parse_one(&text), message);
    }
}

#[test]
fn completion_with_result_and_error_is_rejected() {
    let text = format!(r#"{{"type":3,"invocationId":"0","result":1,"error":"x"}}{RS}"#);
    let error = JsonHubProtocol.parse(text.as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "The 'error' and 'result' properties are mutually exclusive."
    );
}

#[test]
fn stream_invocation_round_trips() {
    let message = HubMessage::StreamInvocation(StreamInvocation {
        headers: Headers::new(),
        invocation_id: "1".into(),
        target: "Stream".into(),
        arguments: json("[10]"),
        stream_ids: vec![],
    });
    let text = format!(r#"{{"type":4,"invocationId":"1","target":"Stream","arguments":[10]}}{RS}"#);
    assert_eq!(write_one(&message), text);
    assert_eq!(parse_one(&text), message);
}

#[test]
fn cancel_invocation_round_trips() {
    let message = HubMessage::CancelInvocation(CancelInvocation {
        headers: Headers::new(),
        invocation_id: "1".into(),
    });
    let text = format!(r#"{{"type":5,"invocationId":"1"}}{RS}"#);
    assert_eq!(write_one(&message), text);
    assert_eq!(parse_one(&text), message);
}

#[test]
fn ping_round_trips() {
    let text = format!(r#"{{"type":6}}{RS}"#);
    assert_eq!(write_one(&HubMessage::Ping), text);
    assert_eq!(parse_one(&text), HubMessage::Ping);
}

#[test]
fn close_in_its_three_shapes() {
    let cases = [
        (Close::default(), r#"{"type":7}"#),
        (
            Close {
                error: Some("Connection closed with an error.".into()),
                allow_reconnect: true,
            },
            r#"{"type":7,"error":"Connection closed with an error.","allowReconnect":true}"#,
        ),
        (
            Close {
                error: Some("x".into()),
                allow_reconnect: false,
            },
            r#"{"type":7,"error":"x"}"#,
        ),
    ];
    for (close, text) in cases {
        let text = format!("{text}{RS}");
        assert_eq!(write_one(&HubMessage::Close(close.clone())), text);
        assert_eq!(parse_one(&text), HubMessage::Close(close));
    }
}

#[test]
fn ack_and_sequence_round_trip() {
    let ack = format!(r#"{{"type":8,"sequenceId":12}}{RS}"#);
    let sequence = format!(r#"{{"type":9,"sequenceId":5}}{RS}"#);
    assert_eq!(write_one(&HubMessage::Ack(Ack { sequence_id: 12 })), ack);
    assert_eq!(
        write_one(&HubMessage::Sequence(Sequence { sequence_id: 5 })),
        sequence
    );
    assert_eq!(parse_one(&ack), HubMessage::Ack(Ack { sequence_id: 12 }));
    assert_eq!(
        parse_one(&sequence),
        HubMessage::Sequence(Sequence { sequence_id: 5 })
    );
}

#[test]
fn half_a_message_is_incomplete_and_many_parse_in_turn() {
    let text = format!(r#"{{"type":6}}{RS}{{"type":7}}{RS}{{"type":"#);
    let bytes = text.as_bytes();
    let Parsed::Message(HubMessage::Ping, first) = JsonHubProtocol.parse(bytes).unwrap() else {
        panic!()
    };
    let rest = &bytes[first..];
    let Parsed::Message(HubMessage::Close(_), second) = JsonHubProtocol.parse(rest).unwrap() else {
        panic!()
    };
    assert_eq!(
        JsonHubProtocol.parse(&rest[second..]).unwrap(),
        Parsed::Incomplete
    );
}

#[test]
fn unknown_types_and_properties_are_skipped() {
    let text = format!(r#"{{"type":99,"whatever":[1]}}{RS}"#);
    assert_eq!(
        JsonHubProtocol.parse(text.as_bytes()).unwrap(),
        Parsed::Ignored(text.len())
    );
    let ping = parse_one(&format!(r#"{{"extra":{{"a":1}},"type":6}}{RS}"#));
    assert_eq!(ping, HubMessage::Ping);
}

#[test]
fn missing_properties_name_the_property() {
    let cases = [
        (
            r#"{"target":"A","arguments":[]}"#,
            "Missing required property 'type'.",
        ),
        (
            r#"{"type":1,"arguments":[]}"#,
            "Missing required property 'target'.",
        ),
        (
            r#"{"type":1,"target":"A"}"#,
            "Missing required property 'arguments'.",
        ),
        (r#"{"type":3}"#, "Missing required property 'invocationId'."),
        (
            r#"{"type":2,"invocationId":"1"}"#,
            "Missing required property 'item'.",
        ),
        (r#"{"type":8}"#, "Missing required property 'sequenceId'."),
    ];
    for (text, expected) in cases {
        let error = JsonHubProtocol
            .parse(format!("{text}{RS}").as_bytes())
            .unwrap_err();
        assert_eq!(error.to_string(), expected, "for {text}");
    }
}

#[test]
fn malformed_shapes_are_errors() {
    for text in [
        r#"{"type":1,"target":"A","arguments":{}}"#,
        r#"{"type":1,"target":"A","arguments":[],"streamIds":[null]}"#,
        r#"{"type":1,"target":"A","arguments":[],"headers":{"a":1}}"#,
        r#"not json"#,
        r#"[1]"#,
    ] {
        assert!(
            JsonHubProtocol
                .parse(format!("{text}{RS}").as_bytes())
                .is_err(),
            "{text}"
        );
    }
}

#[test]
fn arguments_split_into_elements_without_decoding() {
    let payload = json(r#"["a", {"x": 1}, null]"#);
    let elements = payload.elements().unwrap();
    assert_eq!(elements.len(), 3);
    assert_eq!(elements[0].decode::<String>().unwrap(), "a");
    assert_eq!(elements[2].decode::<Option<i32>>().unwrap(), None);
}
