#!/usr/bin/env bash
# Writes the seed corpora under fuzz/corpus/<target>/ (gitignored): the MessagePack vectors of
# crates/signalr-protocol/src/messagepack/vectors.json, and a few JSON messages and handshakes.
# Needs only bash, grep and xxd. Safe to run again: it only adds or overwrites seed-* files.
set -euo pipefail
cd "$(dirname "$0")"
vectors=../crates/signalr-protocol/src/messagepack/vectors.json
mkdir -p corpus/json_messages corpus/messagepack_messages corpus/handshake corpus/payload_elements

# A seed from hex text.
hex() { printf '%s' "$2" | xxd -r -p > "$1"; }
# A MessagePack message from the hex of its body: the one-byte length prefix is added here.
mp() { hex "$1" "$(printf '%02x' $(( ${#2} / 2 )))$2"; }
# A seed from text, with \x1e written as the record separator.
text() { printf '%b' "$2" > "$1"; }

# MessagePack messages: each vector alone, then all of them in one buffer.
all=""
n=0
for h in $(grep -o '"hex": *"[0-9a-f]*"' "$vectors" | sed 's/.*"\([0-9a-f]*\)"$/\1/'); do
    n=$((n + 1))
    hex "corpus/messagepack_messages/seed-vector-$n" "$h"
    all="$all$h"
done
[ "$n" -gt 0 ] || { echo "no vectors found in $vectors" >&2; exit 1; }
hex corpus/messagepack_messages/seed-all-vectors "$all"
# Unknown type 20, then a ping: the first is skipped, the second parsed.
hex corpus/messagepack_messages/seed-unknown-then-ping "029114029106"
# An item with a timestamp extension, and a completion with a nested map result.
mp corpus/messagepack_messages/seed-item-timestamp "940280a133d6ff386d4380"
mp corpus/messagepack_messages/seed-completion-map "950381a161a162a1300381a17891c0"

# JSON messages (\x1e ends each).
J=corpus/json_messages
text $J/seed-invocation '{"type":1,"invocationId":"0","target":"Echo","arguments":["x",1,null,{"a":[true]}]}\x1e'
text $J/seed-invocation-js-order '{"arguments":[],"streamIds":["s"],"target":"T","headers":{"a":"b"},"type":1}\x1e'
text $J/seed-stream-invocation '{"type":4,"invocationId":"1","target":"Stream","arguments":[]}\x1e'
text $J/seed-stream-item '{"type":2,"invocationId":"3","item":null}\x1e'
text $J/seed-completion '{"type":3,"invocationId":"0","result":"hi"}\x1e{"type":3,"invocationId":"1"}\x1e{"type":3,"invocationId":"2","error":"boom"}\x1e'
text $J/seed-cancel-ping '{"type":5,"invocationId":"1"}\x1e{"type":6}\x1e'
text $J/seed-close '{"type":7,"error":"x\\u0000\\"y","allowReconnect":true}\x1e'
text $J/seed-ack-sequence '{"type":8,"sequenceId":12}\x1e{"type":9,"sequenceId":18446744073709551615}\x1e'
text $J/seed-unknown '{"type":42,"whatever":[1,2]}\x1e{"type":6}\x1e'
text $J/seed-partial '{"type":6}\x1e{"type":1,"tar'

# Handshakes.
H=corpus/handshake
text $H/seed-json '{"protocol":"json","version":1}\x1e'
text $H/seed-messagepack '{"protocol":"messagepack","version":2}\x1e{"type":6}\x1e'
text $H/seed-order '{"version":0,"extra":true,"protocol":"json"}\x1e'
text $H/seed-missing '{"version":1}\x1e'

# Argument arrays: MessagePack (from the vectors, plus timestamps and bin) and JSON.
P=corpus/payload_elements
hex $P/seed-mp-string "91a178"
hex $P/seed-mp-empty "90"
hex $P/seed-mp-timestamps "93d6ff386d4380d7ff0000001400000001c70cff00000000ffffffffffffffff"
hex $P/seed-mp-bin "92c403010203930102ff"
hex $P/seed-mp-nested "92dc0002a16181a16291c0cb3ff0000000000000"
text $P/seed-json-values '["x",1,null,{"a":[true]},1.5e3]'
text $P/seed-json-times '["2000-01-01T00:00:00Z","2002-04-01T12:20:15.5+02:00","1969-12-31T23:59:59.123456789Z"]'
text $P/seed-json-bytes '["AQID",[1,2,3],""]'

for target in json_messages messagepack_messages handshake payload_elements; do
    echo "corpus/$target: $(ls corpus/$target | wc -l) files"
done
