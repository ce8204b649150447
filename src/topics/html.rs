//! One self-contained HTML page for a [`TopicsReport`] (`paperscope topics --html`): a 2-D
//! map of the papers coloured by topic (hover shows the title) and the topic list with
//! labels, terms and representative titles. No scripts or styles are fetched: it opens
//! offline. The map is [`super::layout::map`]'s, as on the web app's topics page.

use super::Collection;
use super::{Error, TopicsReport};
use std::fmt::Write;

const W: f64 = 860.0;
const H: f64 = 640.0;
const PAD: f64 = 16.0;

/// The page for `report`, whose papers must come from `index`.
///
/// # Errors
/// As [`super::layout::map`].
pub fn render(report: &TopicsReport, index: &dyn Collection) -> Result<String, Error> {
    let total: usize = report.topics.iter().map(|t| t.size).sum();
    let map = super::layout::map(report, index)?;
    let points = &map.points;

    let mut h = String::with_capacity(200 + points.len() * 200);
    let title = match &report.selection.query {
        Some(q) => format!("paperscope topics: {}", esc(q)),
        None => "paperscope topics: whole collection".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}}\
.wrap{{display:flex;gap:20px;align-items:flex-start}}\
svg{{border:1px solid #ccc;background:#fcfcfc;flex:none}}\
circle{{stroke:#fff;stroke-width:.5;opacity:.85}}circle:hover{{stroke:#000;stroke-width:2;opacity:1}}\
#tip{{position:fixed;pointer-events:none;background:#222;color:#fff;padding:4px 8px;border-radius:4px;max-width:420px;display:none;font-size:13px}}\
.topics{{max-height:{H}px;overflow:auto;flex:1}}.t{{margin:0 0 12px}}.sw{{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:6px;vertical-align:middle}}\
.terms{{color:#555;font-size:12px}}ul{{margin:2px 0 0;padding-left:20px}}h1{{font-size:20px;margin:0 0 4px}}.meta{{color:#666;margin-bottom:12px}}\
</style></head><body><h1>{title}</h1><div class=\"meta\">{}</div><div class=\"wrap\">",
        esc(&meta_line(report, points.len(), total)),
    );
    let _ = write!(
        h,
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">"
    );
    for point in points {
        let t = &report.topics[point.topic];
        let p = index.paper(point.doc);
        let x = PAD + f64::from(point.x) * (W - 2.0 * PAD);
        let y = PAD + f64::from(point.y) * (H - 2.0 * PAD);
        let tip = format!("{} — #{} {}", p.title, t.id, t.label);
        let _ = write!(
            h,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\" data-t=\"{}\"><title>{}</title></circle>",
            colour(t.id),
            esc(&tip),
            esc(&tip)
        );
    }
    h.push_str("</svg><div class=\"topics\">");
    for t in &report.topics {
        let _ = write!(
            h,
            "<div class=\"t\"><span class=\"sw\" style=\"background:{}\"></span><b>#{} {}</b> — {} papers{}<div class=\"terms\">{}</div><ul>",
            colour(t.id),
            t.id,
            esc(&t.label),
            t.size,
            t.growth.map(|g| format!(", growth {g:.2}")).unwrap_or_default(),
            esc(&t.terms.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(" · ")),
        );
        for id in &t.representative {
            if let Some(d) = index.doc_id(id) {
                let p = index.paper(d);
                let _ = write!(
                    h,
                    "<li>{} <span class=\"terms\">({}{})</span></li>",
                    esc(&p.title),
                    esc(&id.0),
                    p.date
                        .as_deref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default()
                );
            }
        }
        h.push_str("</ul></div>");
    }
    h.push_str(
        "</div></div><div id=\"tip\"></div><script>\
const tip=document.getElementById('tip');\
document.querySelectorAll('circle').forEach(c=>{\
c.addEventListener('mousemove',e=>{tip.textContent=c.dataset.t;tip.style.display='block';\
tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});\
c.addEventListener('mouseleave',()=>{tip.style.display='none';});});\
</script></body></html>\n",
    );
    Ok(h)
}

fn meta_line(report: &TopicsReport, drawn: usize, total: usize) -> String {
    let s = &report.selection;
    let mut m = format!(
        "{} topics over {} of {} papers",
        report.topics.len(),
        s.papers,
        s.collection
    );
    if s.query.is_some() {
        let _ = write!(
            m,
            " ({} lexical, {} semantic, {} both)",
            s.lexical, s.semantic, s.both
        );
    }
    if drawn < total {
        let _ = write!(m, "; map shows {drawn} of them");
    }
    m.push_str("; map: t-SNE with the topics set apart");
    m
}

/// A distinct colour per topic id: 12 hand-picked, then golden-angle hues.
pub fn colour(id: usize) -> String {
    const BASE: [&str; 12] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#393b79", "#ad494a",
    ];
    match BASE.get(id) {
        Some(c) => (*c).to_string(),
        None => format!("hsl({:.0},60%,45%)", (id as f64 * 137.508) % 360.0),
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
