//! `kubectl attach` (and `kubectl run -i`): the running container's output
//! from now on, over the same WebSocket protocols as exec. Output goes out
//! on channel 1 as the container writes it (as the agent reads it, before
//! it is cut into log lines, so a prompt shows before its newline; stdout
//! and stderr merged); when the container exits the success status goes
//! out on channel 3 and the stream closes. As with the kubelet, what the
//! container wrote before the attach is not replayed.
//!
//! A container with `stdin: true` (what `kubectl run -i` makes) has a
//! stdin pipe: what the client sends on channel 0 is written to it. With
//! `stdinOnce`, the first attach closes it when the client closes its
//! stdin (v5's close of channel 0) or goes. A container with `tty: true`
//! (`kubectl run -it`, `kubectl debug -it`) has a terminal instead: input
//! goes to it, its output is the log's, and resizes (channel 4) size it.

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use tokio::io::AsyncWriteExt as _;

use super::exec::{CLOSE, RESIZE, STDIN, STDOUT, TerminalSize, accept, finish, frame};
use super::logs::{self, LogOptions};
use crate::access::{LogRef, StdinRef};

pub async fn run<S>(io: S, log: LogRef, stdin: Option<StdinRef>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, writer, mut incoming) = accept(io).await;
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            let Message::Binary(data) = message else { continue };
            match (data.first(), &stdin) {
                (Some(&STDIN), Some(stdin)) => {
                    let mut pipe = stdin.pipe.lock().await;
                    if let Some(p) = pipe.as_mut() {
                        if p.write_all(&data[1..]).await.is_err() {
                            *pipe = None;
                        }
                    }
                }
                (Some(&RESIZE), Some(StdinRef { terminal: Some(t), .. })) => {
                    if let Ok(size) = serde_json::from_slice::<TerminalSize>(&data[1..]) {
                        t.resize(size.width, size.height);
                    }
                }
                (Some(&CLOSE), Some(stdin)) if data.get(1) == Some(&STDIN) && stdin.once => {
                    close(stdin).await;
                }
                _ => {}
            }
        }
        if let Some(stdin) = stdin.filter(|s| s.once) {
            close(&stdin).await;
        }
    });

    // The output as the container writes it, until it exits; without a
    // live feed, the log from its current end, followed.
    let (tx, mut rx) = mpsc::channel(16);
    let follower = match &log.live {
        Some(live) => tokio::spawn(forward_live(live.subscribe(), log.finished.clone(), tx)),
        None => {
            let options = LogOptions {
                follow: true,
                previous: false,
                tail_lines: Some(0),
                timestamps: false,
                since: None,
                limit_bytes: None,
            };
            match logs::open(&log, &options).await {
                Ok(file) => tokio::spawn(logs::stream(file, log.finished.clone(), options, tx)),
                Err(e) => {
                    let status =
                        json!({ "metadata": {}, "status": "Failure", "message": e.message, "reason": "InternalError" });
                    finish(out_tx, writer, reader, status).await;
                    return;
                }
            }
        }
    };
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(bytes) => {
                    if out_tx.send(frame(STDOUT, &bytes)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            // The client went away: nobody reads what follows.
            _ = &mut reader => {
                follower.abort();
                writer.abort();
                return;
            }
        }
    }
    follower.abort();
    finish(out_tx, writer, reader, json!({ "metadata": {}, "status": "Success" })).await;
}

/// Passes an attempt's output on as it is read, until the attempt ends
/// (all of its output was read before it is marked finished).
async fn forward_live(
    mut output: broadcast::Receiver<Bytes>,
    mut finished: watch::Receiver<bool>,
    tx: mpsc::Sender<Bytes>,
) {
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Ok(bytes) => {
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                // Fell behind: what was missed is in the log file.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = async { finished.wait_for(|done| *done).await.map(drop) } => {
                while let Ok(bytes) = output.try_recv() {
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

/// Closes a container's stdin for good (`stdinOnce`): a pipe's write end
/// closes; a terminal, which cannot be half-closed, gets the EOF
/// character, as from a user's ^D.
async fn close(stdin: &StdinRef) {
    let mut pipe = stdin.pipe.lock().await;
    if let Some(mut w) = pipe.take()
        && stdin.terminal.is_some()
    {
        let _ = w.write_all(b"\x04").await;
    }
}
