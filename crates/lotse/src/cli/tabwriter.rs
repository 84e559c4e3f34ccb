//! Column alignment as Go prints it: `text/tabwriter` (used by `kv get -detailed`) and
//! `github.com/ryanuber/columnize` (used by `members`).

/// Go's `tabwriter.NewWriter(w, minwidth, tabwidth, padding, ' ', 0)` followed by writing
/// `text` and `Flush()`: tab-terminated cells of consecutive lines form a column whose width
/// is the widest cell plus `padding`; the text after a line's last tab is not aligned.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    // Each line: its tab-terminated cells, then the trailing cell.
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline ends the last line rather than starting an empty one.
    let ends_with_newline = text.ends_with('\n');
    if ends_with_newline {
        lines.pop();
    }
    let mut out = String::new();
    let mut widths: Vec<usize> = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        // Number of tab-terminated cells of a line is len - 1.
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // This line has a cell in `column`: print what came before, then size the block.
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                out.push_str(&" ".repeat(widths[j].saturating_sub(cell_width(cell))));
            }
        }
        out.push('\n');
    }
}

/// `columnize.Format(lines, &Config{Delim: delim})` with the default glue of two spaces:
/// fields are trimmed, every column but a line's last is padded to the column's widest field.
pub fn columnize(lines: &[String], delim: &str) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(delim).map(|f| f.trim().to_string()).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, f) in row.iter().enumerate() {
            let w = cell_width(f);
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, f) in row.iter().enumerate() {
            out.push_str(f);
            if i + 1 == row.len() {
                out.push('\n');
            } else {
                out.push_str(&" ".repeat(widths[i] - cell_width(f)));
                out.push_str("  ");
            }
        }
    }
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_aligns_first_column() {
        let text = "CreateIndex\t5\nFlags\t0\nKey\tfoo\nValue\tbar";
        assert_eq!(
            tabwrite(text, 0, 6),
            "CreateIndex      5\nFlags            0\nKey              foo\nValue            bar"
        );
    }

    #[test]
    fn tabwriter_value_with_newline_and_tab() {
        // A line without tabs ends the column block; a second tab opens a column of its own.
        let text = "Key\tk\nValue\ta\tb\nrest";
        assert_eq!(
            tabwrite(text, 0, 6),
            "Key        k\nValue      a      b\nrest"
        );
        let text = "Key\tk\nValue\tl1\nl2";
        assert_eq!(tabwrite(text, 0, 6), "Key        k\nValue      l1\nl2");
    }

    #[test]
    fn columnize_pads_all_but_last_column() {
        let lines = vec![
            "Node\x1fAddress\x1fStatus".to_string(),
            "a-long-name\x1f127.0.0.1:8301\x1falive".to_string(),
        ];
        assert_eq!(
            columnize(&lines, "\x1f"),
            "Node         Address         Status\na-long-name  127.0.0.1:8301  alive"
        );
    }
}
