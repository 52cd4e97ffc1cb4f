//! The terminal display of a Dockerfile build, as BuildKit draws it: a header with the
//! elapsed time and the steps done, one line per step (`=> CACHED [stage n/m] RUN …  0.3s`)
//! with a running clock while it runs and the last lines it printed beneath it, redrawn in
//! place ten times a second on standard error; the image and its attestations at the end.
//! Only [`Event::Progress`], `Done` and `Attestation` events are drawn; parallel stages'
//! steps appear as they run.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gcr_engine::build::Phase;
use gcr_engine::BuildEvent as Event;

/// Lines of a running step's output shown beneath it.
const TAIL: usize = 6;

struct Step {
    id: String,
    label: String,
    text: String,
    started: Instant,
    /// Cached, and how long it took.
    done: Option<(bool, f64)>,
    tail: VecDeque<String>,
}

struct State {
    start: Instant,
    steps: Vec<Step>,
    /// Lines after the steps (the image, its attestations), with a time to show.
    after: Vec<(String, Option<String>)>,
    /// Lines drawn by the last frame (to move back over).
    drawn: usize,
    /// Set once the build ended: `Some(true)` when it succeeded.
    ended: Option<bool>,
    /// A write failed (stderr closed): draw nothing more.
    broken: bool,
}

/// The live display; [`Live::finish`] draws the last frame and stops the clock.
pub struct Live {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

fn width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .map(|w| w.ws_col as usize)
        .ok()
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

/// `s` cut to `w` characters.
fn cut(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}

/// A step line: left text, then the time flush right.
fn row(left: &str, time: &str, w: usize) -> String {
    let room = w.saturating_sub(time.chars().count() + 2);
    let left = cut(left, room);
    let pad = room.saturating_sub(left.chars().count());
    format!("{left}{}  {time}", " ".repeat(pad))
}

impl State {
    fn frame(&self, w: usize) -> Vec<String> {
        let w = w.saturating_sub(1);
        let done = self.steps.iter().filter(|s| s.done.is_some()).count();
        let secs = self.start.elapsed().as_secs_f64();
        let end = match self.ended {
            Some(true) => " FINISHED",
            _ => "",
        };
        let mut out = vec![cut(
            &format!("[+] Building {secs:.1}s ({done}/{}){end}", self.steps.len()),
            w,
        )];
        for s in &self.steps {
            let (mark, t) = match s.done {
                Some((true, _)) => ("CACHED ", 0.0),
                Some((false, ms)) => ("", ms / 1000.0),
                None if self.ended == Some(false) => ("ERROR ", s.started.elapsed().as_secs_f64()),
                None => ("", s.started.elapsed().as_secs_f64()),
            };
            out.push(row(
                &format!(" => {mark}{} {}", s.label, s.text.replace('\n', " ")),
                &format!("{t:.1}s"),
                w,
            ));
            if s.done.is_none() {
                for l in &s.tail {
                    out.push(cut(&format!(" => => # {l}"), w));
                }
            }
        }
        out.extend(self.after.iter().map(|(l, t)| match t {
            Some(t) => row(l, t, w),
            None => cut(l, w),
        }));
        out
    }

    fn draw(&mut self) {
        if self.broken {
            return;
        }
        let lines = self.frame(width());
        let mut buf = String::new();
        if self.drawn > 0 {
            buf.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for l in &lines {
            buf.push_str("\r\x1b[2K");
            buf.push_str(l);
            buf.push('\n');
        }
        // A shorter frame than the last (a step's output collapsed): clear the rest.
        buf.push_str("\x1b[J");
        let mut err = std::io::stderr().lock();
        if err
            .write_all(buf.as_bytes())
            .and_then(|_| err.flush())
            .is_err()
        {
            self.broken = true;
        }
        self.drawn = lines.len();
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Progress { id, label, phase } => match phase {
                Phase::Start { text } => self.steps.push(Step {
                    id: id.clone(),
                    label: label.clone(),
                    text: text.clone(),
                    started: Instant::now(),
                    done: None,
                    tail: VecDeque::new(),
                }),
                Phase::Line { line } => {
                    if let Some(s) = self.steps.iter_mut().rev().find(|s| s.id == *id) {
                        if s.tail.len() == TAIL {
                            s.tail.pop_front();
                        }
                        s.tail.push_back(line.clone());
                    }
                }
                Phase::Done {
                    cached,
                    duration_ms,
                } => {
                    if let Some(s) = self.steps.iter_mut().rev().find(|s| s.id == *id) {
                        s.done = Some((*cached, *duration_ms));
                    }
                }
            },
            Event::Done {
                id,
                tags,
                duration_ms,
                ..
            } => {
                self.after.push((
                    format!(" => writing image {id}"),
                    Some(format!("{:.1}s", duration_ms / 1000.0)),
                ));
                for t in tags {
                    self.after.push((format!(" => => naming to {t}"), None));
                }
            }
            Event::Attestation { kind, referrer, .. } => {
                self.after
                    .push((format!(" => attaching {kind} {referrer}"), None));
            }
            _ => {}
        }
    }
}

impl Live {
    /// Starts the display (and its clock).
    pub fn start() -> Live {
        let state = Arc::new(Mutex::new(State {
            start: Instant::now(),
            steps: Vec::new(),
            after: Vec::new(),
            drawn: 0,
            ended: None,
            broken: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(mut s) = state.lock() {
                        s.draw();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Live {
            state,
            stop,
            ticker: Some(ticker),
        }
    }

    pub fn event(&self, e: &Event) {
        if let Ok(mut s) = self.state.lock() {
            s.event(e);
        }
    }

    /// Draws the last frame: `ok` tells whether the build succeeded (steps left running
    /// are then shown as the ones that failed, with their last lines).
    pub fn finish(mut self, ok: bool) {
        self.end(ok);
    }

    fn end(&mut self, ok: bool) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
            if let Ok(mut s) = self.state.lock() {
                s.ended = Some(ok);
                s.draw();
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // A build that ended by an early return: its running steps failed.
        self.end(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, phase: Phase) -> Event {
        Event::Progress {
            id: id.into(),
            label: format!("[s {id}/2]"),
            phase,
        }
    }

    #[test]
    fn frames_show_steps_clocks_cache_marks_and_running_output() {
        let mut s = State {
            start: Instant::now(),
            steps: Vec::new(),
            after: Vec::new(),
            drawn: 0,
            ended: None,
            broken: false,
        };
        s.event(&ev(
            "1",
            Phase::Start {
                text: "FROM base".into(),
            },
        ));
        s.event(&ev(
            "1",
            Phase::Done {
                cached: true,
                duration_ms: 0.0,
            },
        ));
        s.event(&ev(
            "2",
            Phase::Start {
                text: "RUN make".into(),
            },
        ));
        for i in 0..10 {
            s.event(&ev(
                "2",
                Phase::Line {
                    line: format!("line {i}"),
                },
            ));
        }
        let f = s.frame(60);
        assert!(
            f[0].starts_with("[+] Building ") && f[0].ends_with("(1/2)"),
            "{f:?}"
        );
        assert!(f[1].starts_with(" => CACHED [s 1/2] FROM base") && f[1].ends_with("0.0s"));
        assert!(f[2].starts_with(" => [s 2/2] RUN make"), "{f:?}");
        assert_eq!(f.len(), 3 + TAIL, "the last {TAIL} lines: {f:?}");
        assert_eq!(f[3], " => => # line 4");
        assert!(f.iter().all(|l| l.chars().count() <= 59), "{f:?}");
        s.event(&ev(
            "2",
            Phase::Done {
                cached: false,
                duration_ms: 1500.0,
            },
        ));
        s.ended = Some(true);
        let f = s.frame(60);
        assert_eq!(f.len(), 3, "output collapses once the step is done: {f:?}");
        assert!(f[0].ends_with("(2/2) FINISHED"), "{f:?}");
        assert!(f[2].ends_with("1.5s"), "{f:?}");
    }

    #[test]
    fn a_failed_build_marks_the_running_step_and_keeps_its_output() {
        let mut s = State {
            start: Instant::now(),
            steps: Vec::new(),
            after: Vec::new(),
            drawn: 0,
            ended: Some(false),
            broken: false,
        };
        s.event(&ev(
            "1",
            Phase::Start {
                text: "RUN false".into(),
            },
        ));
        s.event(&ev(
            "1",
            Phase::Line {
                line: "oops".into(),
            },
        ));
        let f = s.frame(80);
        assert!(f[1].starts_with(" => ERROR [s 1/2] RUN false"), "{f:?}");
        assert_eq!(f[2], " => => # oops");
    }
}
