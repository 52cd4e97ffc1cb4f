//! The `stream` lines of `POST /build`: Docker's classic builder numbers every instruction
//! of the Dockerfile (`Step 3/6 : ENV A=1`), gcr reports the steps it runs (a stage's FROM,
//! RUN, COPY, ADD, WORKDIR) as they begin. [`Steps`] lines the two up: a step gcr begins is
//! found in the Dockerfile's instruction list, and the instructions of the same stage
//! before it (ENV, ARG, LABEL, CMD, ...: applied without a step of their own) are shown
//! first, so a build reads as dockerd's. A step not found there (an ONBUILD trigger) keeps
//! gcr's own `[stage n/m]` count.

use gcr_engine::build::Phase;
use gcr_engine::BuildEvent as Event;

use crate::build::{short, Out};

/// A Dockerfile's instructions, `(stage, text)` in order, and how far the build got.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    all: Vec<(usize, String)>,
    next: usize,
}

impl Steps {
    pub fn new(all: Vec<(usize, String)>) -> Steps {
        Steps { all, next: 0 }
    }

    fn line(&self, i: usize) -> String {
        format!("Step {}/{} : {}", i + 1, self.all.len(), self.all[i].1)
    }

    /// Whether instruction `i` is the step gcr began with `text`; `loose`: any FROM for a
    /// FROM (gcr's FROM text has the base's build args expanded and no `AS`).
    fn matches(&self, i: usize, text: &str, loose: bool) -> bool {
        let step = &self.all[i].1;
        if step == text {
            return true;
        }
        if !text.starts_with("FROM ") {
            return false;
        }
        let exact = step
            .strip_prefix(text)
            .is_some_and(|rest| rest.to_ascii_uppercase().starts_with(" AS "));
        exact || (loose && step.starts_with("FROM "))
    }

    fn find(&self, text: &str, loose: bool) -> Option<usize> {
        (self.next..self.all.len())
            .find(|&i| self.matches(i, text, loose))
            .or_else(|| (0..self.next).find(|&i| self.matches(i, text, loose)))
    }

    /// The lines for a step gcr begins with `text`, None when it is not in the Dockerfile.
    pub fn begin(&mut self, text: &str) -> Option<Vec<String>> {
        let found = self.find(text, false).or_else(|| self.find(text, true))?;
        let mut out = Vec::new();
        if found >= self.next {
            let current = self.next.checked_sub(1).map(|i| self.all[i].0);
            let stage = self.all[found].0;
            for i in self.next..found {
                let (s, t) = &self.all[i];
                if (*s == stage || Some(*s) == current) && !t.starts_with("FROM ") {
                    out.push(self.line(i));
                }
            }
        }
        out.push(self.line(found));
        self.next = found + 1;
        Some(out)
    }

    /// The build succeeded: the last stage's instructions after its last step.
    pub fn finish(&mut self) -> Vec<String> {
        let Some(stage) = self.next.checked_sub(1).map(|i| self.all[i].0) else {
            return Vec::new();
        };
        let rest: Vec<String> = (self.next..self.all.len())
            .take_while(|&i| self.all[i].0 == stage)
            .map(|i| self.line(i))
            .collect();
        self.next += rest.len();
        rest
    }
}

/// Renders build events as the classic builder's `stream` lines: the numbered steps, the
/// lines a step's command printed, ` ---> Using cache` for a cached one, ` ---> <id>` of a
/// FROM's base image; a `.gcr` spec's
/// steps as `gcr build --progress plain` shows them.
pub(crate) struct Render<'a> {
    out: &'a Out,
    dockerfile: bool,
    steps: Steps,
}

impl<'a> Render<'a> {
    pub fn new(out: &'a Out, dockerfile: bool, steps: Vec<(usize, String)>) -> Render<'a> {
        Render {
            out,
            dockerfile,
            steps: Steps::new(steps),
        }
    }

    pub fn event(&mut self, ev: &Event) {
        match ev {
            Event::Progress { label, phase, .. } if self.dockerfile => match phase {
                Phase::Start { text } => match self.steps.begin(text) {
                    Some(lines) => lines.into_iter().for_each(|l| self.out.stream(l)),
                    None => {
                        let count = label
                            .trim_matches(|c| c == '[' || c == ']')
                            .rsplit(' ')
                            .next()
                            .unwrap_or("");
                        self.out.stream(format!("Step {count} : {text}"));
                    }
                },
                Phase::Line { line } => self.out.stream(line.as_str()),
                Phase::Done { cached: true, .. } => self.out.stream(" ---> Using cache"),
                Phase::Done { .. } => {}
            },
            // The base image a FROM names, as dockerd shows it under the step (gcr has no
            // intermediate images for the other steps to name).
            Event::Base { id: Some(id), .. } if self.dockerfile => {
                self.out.stream(format!(" ---> {}", short(id)))
            }
            _ if self.dockerfile => {}
            Event::Start { name, .. } => self.out.stream(format!("Building: {name}")),
            Event::Base { base, id } => self.out.stream(match id {
                Some(id) => format!("Base image: {base} ({})", short(id)),
                None => format!("Base image: {base}"),
            }),
            Event::Step {
                description,
                cached,
                layer,
                ..
            } => {
                let state = if *cached { "cached" } else { "built" };
                self.out
                    .stream(format!("{description}: {state} {}", short(layer)));
            }
            Event::Output { line, .. } => self.out.stream(format!("    | {line}")),
            _ => {}
        }
    }

    /// The build succeeded: the instructions left after the last step.
    pub fn finish(&mut self) {
        for l in self.steps.finish() {
            self.out.stream(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Steps {
        Steps::new(
            [
                (0, "FROM busybox AS b"),
                (0, "RUN make"),
                (0, "ENV X=1"),
                (1, "FROM alpine"),
                (1, "ARG A"),
                (1, "ENV W=1"),
                (1, "COPY --from=b /x /x"),
                (1, "RUN echo $A"),
                (1, "CMD [\"sh\"]"),
            ]
            .into_iter()
            .map(|(s, t)| (s, t.to_string()))
            .collect(),
        )
    }

    #[test]
    fn steps_are_numbered_as_docker_numbers_instructions() {
        let mut s = steps();
        assert_eq!(
            s.begin("FROM busybox").unwrap(),
            ["Step 1/9 : FROM busybox AS b"]
        );
        assert_eq!(s.begin("RUN make").unwrap(), ["Step 2/9 : RUN make"]);
        assert_eq!(
            s.begin("FROM alpine").unwrap(),
            ["Step 3/9 : ENV X=1", "Step 4/9 : FROM alpine"]
        );
        assert_eq!(
            s.begin("COPY --from=b /x /x").unwrap(),
            [
                "Step 5/9 : ARG A",
                "Step 6/9 : ENV W=1",
                "Step 7/9 : COPY --from=b /x /x"
            ]
        );
        assert_eq!(s.begin("RUN echo $A").unwrap(), ["Step 8/9 : RUN echo $A"]);
        assert_eq!(s.begin("RUN onbuild-trigger"), None);
        assert_eq!(s.finish(), ["Step 9/9 : CMD [\"sh\"]"]);
        assert!(s.finish().is_empty());
    }

    #[test]
    fn a_skipped_stage_is_not_shown() {
        let mut s = steps();
        // Only the second stage is built (it needs nothing of the first here).
        assert_eq!(s.begin("FROM alpine").unwrap(), ["Step 4/9 : FROM alpine"]);
        assert_eq!(s.begin("RUN echo $A").unwrap().len(), 4);
    }
}
