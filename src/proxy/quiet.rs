//! A timer for "nothing happened for this long": armed at the start of a quiet spell,
//! disarmed by progress, and re-armed in place (one timer entry for a whole stream or
//! connection, moved forward without taking the timer wheel's lock).

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::Sleep;

/// Runs out after `timeout` of a quiet spell (see the module doc).
#[derive(Debug)]
pub(crate) struct QuietTimer {
    timeout: Duration,
    /// Allocated at the first quiet spell.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether the deadline counts from the current quiet spell.
    armed: bool,
}

impl QuietTimer {
    pub(crate) fn new(timeout: Duration) -> QuietTimer {
        QuietTimer {
            timeout,
            timer: None,
            armed: false,
        }
    }

    /// The timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Progress: the quiet spell, if any, is over.
    pub(crate) fn progress(&mut self) {
        self.armed = false;
    }

    /// Still quiet: whether the spell has now lasted the whole timeout. The timer is
    /// armed at the spell's first call and wakes `cx` when it runs out.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let at = tokio::time::Instant::now()
                .checked_add(self.timeout)
                .unwrap_or_else(super::far_future);
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }
}
