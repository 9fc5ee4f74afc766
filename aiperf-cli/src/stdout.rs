//! Writing the console report to stdout without panicking: `println!` panics when stdout is
//! closed (`aiperf profile ... | head`) or full, which would turn a finished run into a crash
//! with exit code 101. Here a stdout that cannot take the text loses the text only; the run's
//! exit status and its export files stay as they were.

use std::io::Write;

/// Writes `text` to stdout, ignoring a stdout that is closed or full.
pub(crate) fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
