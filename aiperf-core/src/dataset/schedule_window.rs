//! The replay window of a fixed schedule (`--fixed-schedule-start-offset`, `-end-offset`,
//! `-auto-offset`): which requests of a trace are replayed, each by its own timestamp as AIPerf
//! takes them, and from what time zero.

use std::time::Duration;

use super::Conversation;

/// Which part of a trace to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleWindow {
    /// Requests (turns) timestamped before this are skipped.
    pub start: Option<Duration>,
    /// Requests (turns) timestamped after this are skipped.
    pub end: Option<Duration>,
    /// Shift timestamps so that the first conversation kept is due at once; otherwise they
    /// count from `start` (or from the trace's zero without a start).
    pub auto_offset: bool,
}

impl ScheduleWindow {
    /// Keeps the turns within the window (a turn without a timestamp goes by its
    /// predecessor's), drops the conversations left without one, and shifts every turn's
    /// timestamp to the window's time zero. Returns how many conversations were kept.
    pub fn apply(&self, conversations: &mut Vec<Conversation>) -> usize {
        let within = |at: Duration| {
            self.start.is_none_or(|start| at >= start) && self.end.is_none_or(|end| at <= end)
        };
        for conversation in conversations.iter_mut() {
            let mut at = Duration::ZERO;
            conversation.turns.retain(|turn| {
                at = turn.timestamp.unwrap_or(at);
                within(at)
            });
        }
        conversations.retain(|c| !c.turns.is_empty());
        let first_timestamp = |c: &Conversation| {
            c.turns
                .first()
                .and_then(|t| t.timestamp)
                .unwrap_or_default()
        };
        let zero = if self.auto_offset {
            conversations
                .iter()
                .map(first_timestamp)
                .min()
                .unwrap_or_default()
        } else {
            self.start.unwrap_or_default()
        };
        for turn in conversations.iter_mut().flat_map(|c| c.turns.iter_mut()) {
            turn.timestamp = turn.timestamp.map(|t| t.saturating_sub(zero));
        }
        conversations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Turn;

    fn trace(timestamps_ms: &[u64]) -> Vec<Conversation> {
        timestamps_ms
            .iter()
            .map(|&ms| Conversation {
                session_id: format!("s{ms}"),
                turns: vec![Turn {
                    input: Default::default(),
                    input_tokens: None,
                    delay: None,
                    timestamp: Some(Duration::from_millis(ms)),
                }],
            })
            .collect()
    }

    fn timestamps_ms(conversations: &[Conversation]) -> Vec<u128> {
        conversations
            .iter()
            .map(|c| c.turns[0].timestamp.unwrap().as_millis())
            .collect()
    }

    #[test]
    fn no_window_keeps_everything_as_is() {
        let mut conversations = trace(&[1000, 1300, 1700]);
        assert_eq!(ScheduleWindow::default().apply(&mut conversations), 3);
        assert_eq!(timestamps_ms(&conversations), [1000, 1300, 1700]);
    }

    #[test]
    fn auto_offset_starts_at_the_first_timestamp() {
        let mut conversations = trace(&[1000, 1300, 1700]);
        let window = ScheduleWindow {
            auto_offset: true,
            ..ScheduleWindow::default()
        };
        window.apply(&mut conversations);
        assert_eq!(timestamps_ms(&conversations), [0, 300, 700]);
    }

    #[test]
    fn each_turn_goes_by_its_own_timestamp() {
        // Two sessions, turns at 0, 400 and 800 ms, the second 100 ms later.
        let mut conversations: Vec<Conversation> = (0..2_u64)
            .map(|s| Conversation {
                session_id: format!("s{s}"),
                turns: [0, 400, 800]
                    .map(|ms| Turn {
                        input: Default::default(),
                        input_tokens: None,
                        delay: None,
                        timestamp: Some(Duration::from_millis(ms + 100 * s)),
                    })
                    .to_vec(),
            })
            .collect();
        let window = ScheduleWindow {
            start: Some(Duration::from_millis(300)),
            end: Some(Duration::from_millis(600)),
            auto_offset: false,
        };
        assert_eq!(window.apply(&mut conversations), 2);
        let kept: Vec<Vec<u128>> = conversations
            .iter()
            .map(|c| {
                c.turns
                    .iter()
                    .map(|t| t.timestamp.unwrap().as_millis())
                    .collect()
            })
            .collect();
        assert_eq!(kept, [[100], [200]], "400 and 500 ms, from 300");
    }

    #[test]
    fn start_and_end_bound_the_replay_and_start_is_time_zero() {
        let mut conversations = trace(&[1000, 1300, 1700, 2500]);
        let window = ScheduleWindow {
            start: Some(Duration::from_millis(1200)),
            end: Some(Duration::from_millis(1700)),
            auto_offset: false,
        };
        assert_eq!(window.apply(&mut conversations), 2);
        assert_eq!(timestamps_ms(&conversations), [100, 500]);
    }
}
