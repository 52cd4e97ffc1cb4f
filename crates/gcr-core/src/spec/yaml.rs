//! A small YAML node tree with positions, built from `saphyr-parser` events. It accepts
//! exactly one document of mappings, sequences and scalars and refuses what a spec
//! never needs but an attacker might use: anchors and aliases (billion-laughs bombs),
//! tags, non-string keys, duplicate keys, nesting deeper than [`MAX_DEPTH`].

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::error::{join, Mark, SpecError};

/// Deepest nesting of mappings/sequences accepted.
pub(crate) const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `plain` is false for quoted and block scalars (which are never null or bool).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub mark: Mark,
}

impl Node {
    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// "a string", "a list", ... for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing (null)",
            Kind::Scalar { .. } => "a single value",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

enum Frame {
    Seq {
        mark: Mark,
        path: String,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        path: String,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        seen: HashMap<String, usize>,
    },
}

fn mark(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// Parses `text` into one node tree (`None` for an empty document).
pub(crate) fn load(file: &str, text: &str) -> Result<Option<Node>, SpecError> {
    let err = |m: Mark, path: &str, msg: &str| Err(SpecError::new(file, m, path, msg));
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                let m = Mark {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                };
                return err(m, "", &format!("invalid YAML: {}", e.info()));
            }
        };
        let m = mark(&span);
        // Path of a node starting here, for error messages.
        let here = |stack: &[Frame]| -> String {
            match stack.last() {
                None => String::new(),
                Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
                Some(Frame::Map {
                    path, key: Some(k), ..
                }) => match &k.kind {
                    Kind::Scalar { value, .. } => join(path, value),
                    _ => path.clone(),
                },
                Some(Frame::Map { path, .. }) => path.clone(),
            }
        };
        let anchor_or_tag = |anchor: usize, tagged: bool, stack: &[Frame]| {
            if anchor > 0 {
                return err(m, &here(stack), "YAML anchors (&) and aliases (*) are not allowed in a spec; write the value out");
            }
            if tagged {
                return err(
                    m,
                    &here(stack),
                    "YAML tags (!) are not allowed in a spec; remove the tag",
                );
            }
            Ok(None)
        };
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return err(
                        m,
                        "",
                        "a spec must be a single YAML document; remove the extra '---'",
                    );
                }
                continue;
            }
            Event::Alias(_) => {
                return err(m, &here(&stack), "YAML anchors (&) and aliases (*) are not allowed in a spec; write the value out");
            }
            Event::Scalar(value, style, anchor, tag) => {
                anchor_or_tag(anchor, tag.is_some(), &stack)?;
                Node {
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    mark: m,
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                anchor_or_tag(anchor, tag.is_some(), &stack)?;
                if stack.len() >= MAX_DEPTH {
                    return err(
                        m,
                        &here(&stack),
                        &format!(
                            "nesting is deeper than {MAX_DEPTH} levels; a spec never needs that"
                        ),
                    );
                }
                let path = here(&stack);
                let is_seq = matches!(event, Event::SequenceStart(..));
                stack.push(if is_seq {
                    Frame::Seq {
                        mark: m,
                        path,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        mark: m,
                        path,
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { mark, items, .. }) => Node {
                    kind: Kind::Seq(items),
                    mark,
                },
                Some(Frame::Map { mark, entries, .. }) => Node {
                    kind: Kind::Map(entries),
                    mark,
                },
                None => continue,
            },
        };
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                path,
                entries,
                key,
                seen,
                ..
            }) => {
                match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => {
                        let Kind::Scalar { value, .. } = &node.kind else {
                            return err(
                                node.mark,
                                path,
                                "mapping keys must be plain names, not lists or mappings",
                            );
                        };
                        if let Some(first) = seen.get(value) {
                            let p = join(path, value);
                            return err(node.mark, &p, &format!("duplicate key (first defined on line {first}); remove one of them"));
                        }
                        seen.insert(value.clone(), node.mark.line);
                        *key = Some(node);
                    }
                }
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(text: &str) -> String {
        load("t.gcr", text).unwrap_err().to_string()
    }

    #[test]
    fn builds_tree_with_marks() {
        let root = load("t", "a: 1\nb:\n  - x\n  - [y, 'z']\n")
            .unwrap()
            .unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[1].0.mark.line, entries[1].0.mark.col), (2, 1));
        let Kind::Seq(items) = &entries[1].1.kind else {
            panic!("not a seq")
        };
        assert_eq!((items[0].mark.line, items[0].mark.col), (3, 5));
        let Kind::Seq(inner) = &items[1].kind else {
            panic!("not a seq")
        };
        assert!(matches!(&inner[1].kind, Kind::Scalar { value, plain: false } if value == "z"));
        assert!(load("t", "").unwrap().is_none());
        assert!(load("t", "a:\n").unwrap().is_some());
    }

    #[test]
    fn rejects_hostile_yaml() {
        assert_eq!(fail("a: &x 1\nb: *x\n"), "t.gcr:1:4: a: YAML anchors (&) and aliases (*) are not allowed in a spec; write the value out");
        assert!(fail("a: !!binary aGk=\n").contains("t.gcr:1:4: a: YAML tags (!) are not allowed"));
        assert_eq!(
            fail("a: 1\nb: 2\na: 3\n"),
            "t.gcr:3:1: a: duplicate key (first defined on line 1); remove one of them"
        );
        assert!(fail("a: 1\n---\nb: 2\n").contains("single YAML document"));
        assert!(fail("? [a]\n: 1\n").contains("mapping keys must be plain names"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(fail(&deep).contains("deeper than 32"));
        assert!(fail("a: [1, 2\n").starts_with("t.gcr:"));
        assert!(fail("a: [1, 2\n").contains("invalid YAML"));
    }

    #[test]
    fn nulls() {
        let root = load("t", "a:\nb: ~\nc: ''\n").unwrap().unwrap();
        let Kind::Map(e) = &root.kind else {
            panic!("not a map")
        };
        assert!(e[0].1.is_null() && e[1].1.is_null() && !e[2].1.is_null());
    }
}
