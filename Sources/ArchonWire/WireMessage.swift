/// A model value with a protobuf form in the `archon.v1` schema (`proto/archon/v1/*.proto`).
///
/// Encoding is total and deterministic: every field is written, map entries are sorted by key,
/// and every sub-message the model holds is written even when it is all defaults, so decoding
/// `value.encoded()` gives back `value` (NaN stays NaN, and so on). Decoding never traps on hostile
/// bytes; it throws a ``WireError``. The mapping rules, in one place:
///
/// - **Integers.** A Swift `Int` written to a `uint32`/`uint64` field is clamped (negative → 0,
///   too large → the field's maximum). A `uint64` read into an `Int` is clamped to `Int.max`.
/// - **Enums.** The schema says enum value 0 means "not set / unknown". Value 0 and any value this
///   build does not know (a newer peer's) decode to the model's "unspecified" case where there is
///   one: `FailureClass.none`, `Enforcement.unspecified`, and `LRSchedule.Kind.constant` (the schema
///   treats an unspecified schedule as constant). Where the model has no such case
///   (`JobAssignment.DesiredState`, `EscalationLevel`, `Severity`, `IncidentCause`, `IncidentStatus`,
///   `Escalation.Kind`) the message is rejected with ``WireError/Code/invalidValue``: acting on a
///   guessed desired state or severity would be worse than dropping the message.
/// - **Strings** must be UTF-8 (as proto3 requires); any other bytes are rejected with
///   ``WireError/Code/invalidValue``, never repaired. protobuf-c stores strings NUL-terminated, so a
///   string ends at its first NUL character, in both directions.
/// - **Absent sub-messages** decode to the model's default value, as in the JSON form
///   (`TrainingConfig()` for an absent `config`, `CheckpointPolicy()` for an absent `checkpoint`, …);
///   an absent `EpochMetrics.validation` is `nil`. Sub-messages the model requires are rejected when
///   absent (``WireError/Code/missingField``): `JobAssignment.spec`, `Escalation.incident`.
/// - **`TrainingEvent.body`** must be set; an event without one (or with an arm this build does not
///   know) is rejected with ``WireError/Code/missingBody``.
/// - **Maps** with a repeated key keep the last entry, as protobuf specifies. Unknown fields are ignored.
/// - **Size.** Inputs over ``maxWireSize`` bytes are rejected before parsing.
public protocol WireMessage: Sendable {
    /// Fully qualified protobuf name, e.g. `archon.v1.TrainingEvent`.
    static var protoMessageName: String { get }

    /// Decodes one message from its protobuf bytes.
    static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> Self

    /// The protobuf bytes of this value.
    func encoded() -> [UInt8]
}

extension WireMessage {
    /// Largest input ``decode(_:)`` accepts: 4 MiB, four times NATS's default `max_payload`.
    public static var maxWireSize: Int { 4 * 1024 * 1024 }
}
