//! `banatie warm`: read the input into items, send them in batches to
//! `POST /api/v1/live/warm`, one request at a time, and show each item's
//! ending as the service answers it. The whole input is read and checked
//! before anything is sent. The exit status: every item cached or generated
//! ([`Ending::Done`]), some failed ([`Ending::SomeFailed`]), or trouble: a
//! usage error, a request refused whole, a connection that failed or an
//! answer that ended before every item of its request was answered
//! ([`Ending::Trouble`]; nothing more is sent after it).

pub mod answer;
pub mod batch;
pub mod client;
pub mod html;
pub mod item;
pub mod lines;
pub mod report;
pub mod url;

use std::io::Read;
use std::ops::Range;

use crate::args::{Key, Warm};
use crate::Ending;
use client::Client;
use item::Item;
use report::Report;

/// Why a run stops with [`Ending::Trouble`]: a message for the operator
/// (never holding the key).
#[derive(Debug)]
pub struct Trouble(pub String);

pub fn run(args: &Warm) -> Ending {
    let key = args.key.clone();
    let said = |message: &str| {
        // Whatever a server or a system said, the key is not repeated.
        let secret = key.as_ref().map(Key::expose).filter(|k| !k.is_empty());
        let message = secret.map_or(message.to_string(), |k| message.replace(k, "[key]"));
        eprintln!("banatie warm: {message}");
    };
    match warm(args) {
        Ok((report_line, ending)) => {
            eprintln!("{report_line}");
            ending
        }
        Err((Trouble(message), summary)) => {
            if let Some(summary) = summary {
                eprintln!("{summary}");
            }
            said(&message);
            Ending::Trouble
        }
    }
}

/// The run: its summary and ending, or the trouble that stopped it (with
/// the summary so far, once anything was sent).
fn warm(args: &Warm) -> Result<(String, Ending), (Trouble, Option<String>)> {
    let early = |t: Trouble| (t, None);
    let key = checked_key(args.key.as_ref()).map_err(early)?;
    let client = Client::new(&args.url, key).map_err(early)?;
    let items = read_items(args).map_err(early)?;
    let mut report = Report::for_stdout(items.len());
    for run in batch::batches(&items, usize::from(args.batch_size)) {
        if let Err(trouble) = send(&client, &items, run, &mut report) {
            return Err((trouble, Some(report.finish())));
        }
    }
    let summary = report.finish();
    let ending = if report.tally.failed == 0 { Ending::Done } else { Ending::SomeFailed };
    Ok((summary, ending))
}

/// One batch: each line shown as it arrives; every item must be answered
/// once.
fn send(client: &Client, items: &[Item], run: Range<usize>, report: &mut Report) -> Result<(), Trouble> {
    let batch = &items[run.clone()];
    let mut answered = vec![false; batch.len()];
    let read = client.warm(&batch::body(batch), &mut |line| {
        match answered.get_mut(line.index) {
            Some(seen @ false) => *seen = true,
            Some(true) => {
                return Err(Trouble(format!("the service answered item {} twice", run.start + line.index)))
            }
            None => {
                return Err(Trouble(format!(
                    "the service answered an item this request did not have (index {})",
                    line.index
                )))
            }
        }
        report.answered(run.start + line.index, &batch[line.index], &line.outcome);
        Ok(())
    })?;
    if read < batch.len() {
        return Err(Trouble(format!(
            "the answer ended after {read} of {} items (the server's request time limit? try a smaller --batch-size); \
             nothing more was sent",
            batch.len()
        )));
    }
    Ok(())
}

fn checked_key(key: Option<&Key>) -> Result<Key, Trouble> {
    let key = key.ok_or_else(|| Trouble("no API key: give --key or set BANATIE_API_KEY".into()))?;
    let fits = !key.expose().is_empty() && key.expose().bytes().all(|b| b.is_ascii_graphic());
    if !fits {
        return Err(Trouble(
            "the API key is empty or has characters a header cannot carry (spaces, newlines, non-ASCII)"
                .into(),
        ));
    }
    Ok(key.clone())
}

/// The whole input's items (never empty).
fn read_items(args: &Warm) -> Result<Vec<Item>, Trouble> {
    let stdin = || {
        let mut bytes = Vec::new();
        ("standard input".to_string(), std::io::stdin().read_to_end(&mut bytes).map(|_| bytes))
    };
    let (name, bytes) = match args.input.as_deref() {
        None => stdin(),
        Some(p) if p.as_os_str() == "-" => stdin(),
        Some(p) => (p.display().to_string(), std::fs::read(p)),
    };
    let bytes = bytes.map_err(|e| Trouble(format!("cannot read {name}: {e}")))?;
    let text = text(&name, bytes)?;
    let items = if args.from_html { html::items(&text) } else { lines::items(&text) }
        .map_err(|bad| Trouble(format!("{name}, {bad}")))?;
    if items.is_empty() {
        let what =
            if args.from_html { "no live URL in an <img> or <source>" } else { "no prompt or live URL" };
        return Err(Trouble(format!("nothing to warm: {what} in {name}")));
    }
    Ok(items)
}

/// The input as text: UTF-8, or refused (a prompt is never guessed at).
fn text(name: &str, bytes: Vec<u8>) -> Result<String, Trouble> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Trouble(format!("{name} is not UTF-8 text (at byte {at}); convert it first (iconv)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_needed_and_must_fit_in_a_header() {
        assert!(checked_key(None).unwrap_err().0.contains("BANATIE_API_KEY"));
        for bad in ["", "bl_a b", "bl_a\nb", "bl_é"] {
            let e = checked_key(Some(&bad.parse().unwrap())).unwrap_err();
            assert!(e.0.starts_with("the API key is empty or has characters"), "{}", e.0);
        }
        assert!(checked_key(Some(&"bl_0123".parse().unwrap())).is_ok());
    }

    #[test]
    fn input_that_is_not_utf8_is_refused_saying_where() {
        assert_eq!(text("p.txt", "a fox\n".into()).unwrap(), "a fox\n");
        let latin1 = b"a caf\xe9\n".to_vec();
        assert_eq!(
            text("p.txt", latin1).unwrap_err().0,
            "p.txt is not UTF-8 text (at byte 5); convert it first (iconv)"
        );
    }
}
