//! Forwards `watch` progress to the MCP client as `notifications/progress`, in order, only when
//! the client sent a progress token.

use crate::watch::Progress;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;

pub struct McpProgress {
    sender: Option<mpsc::UnboundedSender<(usize, usize, String)>>,
}

impl McpProgress {
    pub fn new(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Self {
        let Some(token) = token else {
            return Self { sender: None };
        };
        let (sender, mut receiver) = mpsc::unbounded_channel::<(usize, usize, String)>();
        tokio::spawn(async move {
            let mut last = f64::MIN;
            while let Some((done, total, message)) = receiver.recv().await {
                // MCP requires every notification's progress to exceed the previous one's, even
                // when two reports carry the same `done`.
                let progress = (done as f64).max(last + 1e-6);
                last = progress;
                let param = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(total as f64)
                    .with_message(message);
                if peer.notify_progress(param).await.is_err() {
                    break;
                }
            }
        });
        Self {
            sender: Some(sender),
        }
    }
}

impl Progress for McpProgress {
    fn report(&self, done: usize, total: usize, message: &str) {
        if let Some(sender) = &self.sender {
            let _ = sender.send((done, total, message.to_string()));
        }
    }
}
