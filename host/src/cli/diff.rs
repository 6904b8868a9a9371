//! A line diff for `pakaura mapper test`: the longest common subsequence of two texts'
//! lines, printed as `-` (expected only), `+` (actual only) and ` ` (both) lines, with
//! unchanged runs longer than the context folded away.

use std::fmt::Write as _;

/// Unchanged lines kept around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line<'a> {
    Same(&'a str),
    Expected(&'a str),
    Actual(&'a str),
}

/// The diff of `expected` against `actual`, or `None` when they are the same. Each line
/// is indented by `indent`.
pub(crate) fn line_diff(expected: &str, actual: &str, indent: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let lines = diff_lines(
        &expected.lines().collect::<Vec<_>>(),
        &actual.lines().collect::<Vec<_>>(),
    );
    let changed: Vec<bool> = lines.iter().map(|l| !matches!(l, Line::Same(_))).collect();
    let near_change = |i: usize| {
        let from = i.saturating_sub(CONTEXT);
        let to = (i + CONTEXT + 1).min(lines.len());
        changed[from..to].iter().any(|&c| c)
    };
    let mut out = String::new();
    let mut folded = false;
    for (i, line) in lines.iter().enumerate() {
        let (sign, text) = match line {
            Line::Same(t) => (' ', t),
            Line::Expected(t) => ('-', t),
            Line::Actual(t) => ('+', t),
        };
        if sign == ' ' && !near_change(i) {
            if !folded {
                let _ = writeln!(out, "{indent}  ...");
                folded = true;
            }
            continue;
        }
        folded = false;
        let _ = writeln!(out, "{indent}{sign} {text}");
    }
    // Changes only in trailing whitespace or line endings show no line: say so.
    if !changed.iter().any(|&c| c) {
        let _ = writeln!(out, "{indent}(the texts differ only in line endings)");
    }
    Some(out)
}

/// Largest table the LCS may use; past it the middle shows as removed then added.
const MAX_CELLS: usize = 1 << 22;

/// The LCS alignment of `a` (expected) and `b` (actual), in order. The common head and
/// tail are matched first, so the table covers only the part that differs.
fn diff_lines<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Line<'a>> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out: Vec<Line<'a>> = a[..head].iter().map(|l| Line::Same(l)).collect();
    let (middle_a, middle_b) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    if (middle_a.len() + 1) * (middle_b.len() + 1) > MAX_CELLS {
        out.extend(middle_a.iter().map(|l| Line::Expected(l)));
        out.extend(middle_b.iter().map(|l| Line::Actual(l)));
    } else {
        out.extend(lcs_lines(middle_a, middle_b));
    }
    out.extend(a[a.len() - tail..].iter().map(|l| Line::Same(l)));
    out
}

fn lcs_lines<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Line<'a>> {
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(Line::Expected(a[i]));
            i += 1;
        } else {
            out.push(Line::Actual(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| Line::Expected(l)));
    out.extend(b[j..].iter().map(|l| Line::Actual(l)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(line_diff("a\nb", "a\nb", ""), None);
    }

    #[test]
    fn changed_lines_are_marked_and_far_context_folded() {
        let expected = "1\n2\n3\n4\n5\n6\n7\n8\nold\n9";
        let actual = "1\n2\n3\n4\n5\n6\n7\n8\nnew\n9\n10";
        let diff = line_diff(expected, actual, "").unwrap();
        assert_eq!(
            diff, "  ...\n  6\n  7\n  8\n- old\n+ new\n  9\n+ 10\n",
            "{diff}"
        );
    }

    #[test]
    fn insertions_and_deletions_align_on_common_lines() {
        let lines = diff_lines(&["a", "b", "c"], &["a", "c", "d"]);
        assert_eq!(
            lines,
            [
                Line::Same("a"),
                Line::Expected("b"),
                Line::Same("c"),
                Line::Actual("d"),
            ]
        );
    }
}
