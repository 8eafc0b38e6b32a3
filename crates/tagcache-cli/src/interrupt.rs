//! Ctrl-C or SIGTERM (what containers send): the first asks the running
//! command to stop (so it can clean up what it wrote); a second, or no
//! answer within a grace period, makes `main` drop the command outright.

use std::time::Duration;

use tokio::sync::watch;

/// How long a command may take to clean up after the first Ctrl-C.
const GRACE: Duration = Duration::from_secs(15);

/// Shared view of how many times Ctrl-C was pressed.
#[derive(Debug, Clone)]
pub struct Interrupt {
    presses: watch::Receiver<u32>,
}

impl Interrupt {
    /// Starts listening for Ctrl-C and SIGTERM (call inside the runtime).
    pub fn install() -> Self {
        let (tx, rx) = watch::channel(0u32);
        let on_term = tx.clone();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                tx.send_modify(|n| *n += 1);
                tracing::warn!("interrupted: cleaning up (press Ctrl-C again to quit at once)");
            }
        });
        #[cfg(unix)]
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            while term.recv().await.is_some() {
                on_term.send_modify(|n| *n += 1);
                tracing::warn!("terminated: cleaning up (a second SIGTERM quits at once)");
            }
        });
        #[cfg(not(unix))]
        drop(on_term);
        Self { presses: rx }
    }

    async fn presses_at_least(&self, n: u32) {
        let mut rx = self.presses.clone();
        // An error means the listener is gone: never resolve.
        if rx.wait_for(|p| *p >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves at the first Ctrl-C.
    pub async fn requested(&self) {
        self.presses_at_least(1).await;
    }

    /// Resolves at the second Ctrl-C, or when the grace period after the
    /// first one is over.
    pub async fn forced(&self) {
        self.requested().await;
        tokio::select! {
            () = self.presses_at_least(2) => {}
            () = tokio::time::sleep(GRACE) => {}
        }
    }
}
