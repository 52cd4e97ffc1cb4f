//! Live step progress of a Dockerfile build ([`Event::Progress`]): which step of which
//! stage is running, the lines it prints, and how it ended, labelled as BuildKit does
//! (`[stage n/m]`, counting the stage's FROM and its RUN, COPY, ADD and WORKDIR steps).

use crate::{Event, Phase};

/// The step being built, for the events of one stage at a time.
#[derive(Default)]
pub(super) struct Live {
    stage: String,
    /// Steps of the stage so far (its FROM is 1) and in all.
    n: usize,
    m: usize,
    /// The running step: its id and label.
    cur: Option<(String, String)>,
}

impl Live {
    /// A stage begins: `name` (its `AS` name, else `stage-N`) with `m` steps, FROM first.
    pub fn enter(&mut self, name: String, m: usize) {
        *self = Live {
            stage: name,
            n: 0,
            m,
            cur: None,
        };
    }

    /// The stage has `m` steps in all (its base's ONBUILD triggers count too).
    pub fn set_total(&mut self, m: usize) {
        self.m = m;
    }

    /// The next step of the stage begins.
    pub fn begin(&mut self, emit: &mut dyn FnMut(&Event), text: &str) {
        self.n += 1;
        let label = format!("[{} {}/{}]", self.stage, self.n, self.m.max(self.n));
        let id = format!("{} {}", self.stage, self.n);
        emit(&Event::Progress {
            id: id.clone(),
            label: label.clone(),
            phase: Phase::Start { text: text.into() },
        });
        self.cur = Some((id, label));
    }

    /// The running step printed `line`.
    pub fn line(&self, emit: &mut dyn FnMut(&Event), line: &str) {
        if let Some((id, label)) = &self.cur {
            emit(&Event::Progress {
                id: id.clone(),
                label: label.clone(),
                phase: Phase::Line { line: line.into() },
            });
        }
    }

    /// The running step ended.
    pub fn done(&mut self, emit: &mut dyn FnMut(&Event), cached: bool, duration_ms: f64) {
        if let Some((id, label)) = self.cur.take() {
            emit(&Event::Progress {
                id,
                label,
                phase: Phase::Done {
                    cached,
                    duration_ms,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_labelled_per_stage_and_lines_follow_the_running_step() {
        let mut events = Vec::new();
        let mut emit = |e: &Event| events.push(e.clone());
        let mut l = Live::default();
        l.enter("build".into(), 2);
        l.begin(&mut emit, "FROM base");
        l.done(&mut emit, false, 1.0);
        l.line(&mut emit, "nobody runs");
        l.begin(&mut emit, "RUN make");
        l.line(&mut emit, "cc -c x.c");
        l.done(&mut emit, true, 0.5);
        let got: Vec<(String, String, Phase)> = events
            .into_iter()
            .filter_map(|e| match e {
                Event::Progress { id, label, phase } => Some((id, label, phase)),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0].1, "[build 1/2]");
        assert_eq!(got[2].1, "[build 2/2]");
        assert_eq!(got[2].0, "build 2");
        assert_eq!(
            got[3].2,
            Phase::Line {
                line: "cc -c x.c".into()
            }
        );
        assert!(matches!(got[4].2, Phase::Done { cached: true, .. }));
    }
}
