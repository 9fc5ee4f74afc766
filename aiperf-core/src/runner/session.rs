//! One conversation, turn by turn: each turn waits for its due time (its timestamp in a fixed
//! schedule, else the end of the previous turn plus its delay, and at a request rate the next
//! tick of the rate) and, under `--prefill-concurrency`, for a prefill slot, claims a request
//! of the phase, and is sent with the conversation so far: the earlier user turns and the
//! server's real answers, so multi-turn prompts grow as they would with a real user.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::sleep_until;

use super::Shared;
use super::dispatch::PhaseState;
use super::request::{self, RequestSpec, random_uuid};
use crate::clock::{after, instant_at};
use crate::endpoint::{Message, RequestInput, Role};
use crate::schedule::LoadMode;

/// Sends conversation `index`, its first turn due at `first_due_ns` (with `first_prefill_slot`
/// when its start took one), handing each turn's record on as it ends. Stops early, between
/// turns, when the phase stops.
pub(super) async fn run_conversation(
    shared: &Arc<Shared>,
    phase: &PhaseState,
    index: usize,
    first_due_ns: u64,
    first_prefill_slot: Option<OwnedSemaphorePermit>,
) {
    let conversation = &shared.conversations[index];
    // A first turn that waits out a delay takes its slot when it is due instead.
    let first_waits = conversation
        .turns
        .first()
        .is_some_and(|t| t.delay.is_some());
    let mut first_prefill_slot = first_prefill_slot.filter(|_| !first_waits);
    let transport = shared.next_transport();
    let fixed_schedule = matches!(phase.load, LoadMode::FixedSchedule { .. });
    let multi_turn = conversation.turns.len() > 1;
    let correlation_id = random_uuid();
    let mut history: Vec<Message> = Vec::new();
    let mut sent: Vec<Bytes> = Vec::with_capacity(conversation.turns.len());
    let mut previous_end_ns = None;

    for (turn_index, turn) in conversation.turns.iter().enumerate() {
        let mut due_ns = match (fixed_schedule, turn.timestamp, previous_end_ns) {
            (true, Some(timestamp), _) => after(phase.start_ns, timestamp),
            (_, _, Some(previous_end)) => previous_end,
            (_, _, None) => first_due_ns,
        };
        if let Some(delay) = turn.delay {
            due_ns = after(due_ns, delay);
        }
        // A turn waits for its due time, and at a request rate a later turn for a tick of the
        // rate too; not past the phase's last request.
        if due_ns > crate::clock::now_ns() {
            tokio::select! {
                _ = sleep_until(instant_at(due_ns).into()) => {}
                () = phase.sending_ended(shared) => break,
            }
        }
        if let (Some(ticks), Some(_)) = (&phase.turn_ticks, previous_end_ns) {
            tokio::select! {
                ticked = ticks.wait() => if !ticked {
                    break;
                },
                () = phase.sending_ended(shared) => break,
            }
            due_ns = due_ns.max(crate::clock::now_ns());
        }
        // Under --prefill-concurrency, a slot among the requests awaiting a first response;
        // the request is due once it has one, as AIPerf issues it then.
        let prefill_slot = match (first_prefill_slot.take(), &phase.prefill_slots) {
            (Some(slot), _) => Some(slot),
            (None, Some(slots)) => {
                let slot = tokio::select! {
                    slot = Arc::clone(slots).acquire_owned() => slot.ok(),
                    () = phase.sending_ended(shared) => break,
                };
                due_ns = due_ns.max(crate::clock::now_ns());
                slot
            }
            (None, None) => None,
        };
        let Some(claim) = phase.claim(shared, due_ns) else {
            break;
        };
        let payload = match &turn.payload {
            Some(payload) if history.is_empty() => payload.clone(),
            _ => {
                let mut messages = history.clone();
                messages.extend(turn.input.messages.iter().cloned());
                turn.endpoint.format_payload(&RequestInput {
                    messages,
                    max_output_tokens: turn.input.max_output_tokens,
                })
            }
        };
        let record = request::execute(
            shared,
            RequestSpec {
                phase: phase.phase,
                index: claim.run_index,
                scheduled_ns: due_ns,
                payload: payload.clone(),
                session_id: &conversation.session_id,
                correlation_id: &correlation_id,
                turn_index: turn_index as u32,
                session_num: claim.phase_index as u64,
                input_tokens: turn.input_tokens,
                max_output_tokens: turn.input.max_output_tokens.map(u64::from),
                transport,
                prefill_slot,
            },
        )
        .await;
        sent.push(payload);
        previous_end_ns = Some(record.end_ns);
        if multi_turn {
            history.extend(turn.input.messages.iter().cloned());
            if record.is_success() {
                history.push(Message {
                    role: Role::Assistant,
                    content: record.text.content.clone(),
                });
            }
        }
        shared.finish(record);
    }
    if sent.len() == conversation.turns.len() {
        shared.sent[index].get_or_init(|| sent);
    } else if !sent.is_empty() {
        shared.sent_in_part[index].get_or_init(|| sent);
    }
}
