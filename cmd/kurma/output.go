package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// printJSON prints a message for programs.
func (c *cli) printJSON(m proto.Message) error {
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", data)
	return err
}

// terminalWidth is stdout's width when it is a terminal, 0 otherwise.
func terminalWidth(w io.Writer) int {
	if !isTerminal(w) {
		return 0
	}
	f := w.(*os.File)
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// table prints rows under a header, the columns aligned. On a terminal
// too narrow for them, the column marked shrink is cut to fit (with …).
type table struct {
	header []string
	rows   [][]string
	shrink int // index of the column that gives way, -1 for none
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(w io.Writer) error {
	if width := terminalWidth(w); width > 0 && t.shrink >= 0 {
		t.fit(width)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fit cuts the shrink column so that every line fits in width.
func (t *table) fit(width int) {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	total := 0
	for _, w := range widths {
		total += w + 2
	}
	over := total - 2 - width
	if over <= 0 {
		return
	}
	limit := max(widths[t.shrink]-over, len(t.header[t.shrink]), 8)
	for _, r := range t.rows {
		if s := r[t.shrink]; utf8.RuneCountInString(s) > limit {
			r[t.shrink] = string([]rune(s)[:limit-1]) + "…"
		}
	}
}

// humanSize prints a byte count in binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ago prints how long ago t was, as people say it.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// progress shows a transfer on a terminal, on one line redrawn in place;
// it says nothing when stderr is not a terminal (pipes, logs).
type progress struct {
	w     io.Writer
	on    bool
	shown bool
}

func (c *cli) progress() *progress {
	return &progress{w: c.stderr, on: isTerminal(c.stderr)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) update(what string, done, total int64) {
	if !p.on {
		return
	}
	line := fmt.Sprintf("%s  %s", what, humanSize(done))
	if total > 0 {
		line = fmt.Sprintf("%s  %s / %s  %3d%%", what, humanSize(done), humanSize(total), done*100/total)
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.shown = true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
