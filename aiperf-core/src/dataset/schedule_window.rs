//! The replay window of a fixed schedule (`--fixed-schedule-start-offset`, `-end-offset`,
//! `-auto-offset`): which conversations of a trace are replayed, and from what time zero.

use std::time::Duration;

use super::Conversation;

/// Which part of a trace to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleWindow {
    /// Conversations whose first turn is timestamped before this are skipped.
    pub start: Option<Duration>,
    /// Conversations whose first turn is timestamped after this are skipped.
    pub end: Option<Duration>,
    /// Shift timestamps so that the first conversation kept is due at once; otherwise they
    /// count from `start` (or from the trace's zero without a start).
    pub auto_offset: bool,
}

impl ScheduleWindow {
    /// Keeps the conversations within the window and shifts every turn's timestamp to the
    /// window's time zero. Returns how many conversations were kept.
    pub fn apply(&self, conversations: &mut Vec<Conversation>) -> usize {
        let first_timestamp = |c: &Conversation| {
            c.turns
                .first()
                .and_then(|t| t.timestamp)
                .unwrap_or_default()
        };
        conversations.retain(|c| {
            let first = first_timestamp(c);
            self.start.is_none_or(|start| first >= start) && self.end.is_none_or(|end| first <= end)
        });
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
