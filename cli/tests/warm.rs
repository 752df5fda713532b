//! `banatie warm`, the built binary, against a fake warm endpoint on
//! 127.0.0.1 that streams its NDJSON lines with delays: what it sends, what
//! it prints (plain lines, as they arrive), its exit statuses, and that the
//! key never shows.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{banatie, banatie_on_a_terminal, cached, failed, generated, Answer, Fake};

const KEY: &str = "bl_test_key_0123456789abcdef";

fn now() -> Duration {
    Duration::ZERO
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_item_answered_prints_a_line_each_as_it_arrives_and_exits_0() {
    let fake = Fake::start(|items| {
        assert_eq!(items.len(), 3);
        Answer::Lines {
            lines: vec![(now(), generated(1)), (ms(400), cached(0)), (ms(400), generated(2))],
            complete: true,
        }
    });
    let input = "# the home page\n\
                 a red fox in the snow\n\
                 \n\
                 /api/v1/live/generate?prompt=a+lighthouse&w=384&format=avif&progressive=1\n\
                 https://img.example.com/cdn/acme/live/hero?prompt=a+hero&project=p&exp=1&sig=s\n";
    let run = banatie(&["warm", "--url", &fake.base, "--key", KEY], &[], input);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.lines(),
        [
            "1\tgenerated\timg-1\ta lighthouse",
            "0\tcached\timg-0\ta red fox in the snow",
            "2\tgenerated\timg-2\ta hero",
        ]
    );
    // Printed as each arrived: the first long before the last.
    let first = run.stdout[0].0;
    let last = run.stdout[2].0;
    assert!(last.duration_since(first) >= ms(600), "lines came {:?} apart", last.duration_since(first));
    assert!(run.stderr.contains("warm: 2 generated, 1 cached, 0 failed of 3 items"), "{}", run.stderr);
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/api/v1/live/warm");
    assert_eq!(sent[0].header("x-api-key"), Some(KEY));
    assert_eq!(sent[0].header("content-type"), Some("application/json"));
    assert_eq!(
        sent[0].items,
        [
            json!({"prompt": "a red fox in the snow"}),
            json!({"prompt": "a lighthouse", "w": "384", "format": "avif"}),
            json!({"prompt": "a hero", "scope": "hero"}),
        ]
    );
    assert!(!run.all().contains(KEY));
}

#[test]
fn one_failed_item_is_shown_with_its_code_and_message_and_exits_1() {
    let fake = Fake::start(|_| Answer::Lines {
        lines: vec![
            (now(), generated(0)),
            (ms(50), failed(1, "budget_exceeded", "the project's generation budget is spent")),
        ],
        complete: true,
    });
    let run = banatie(&["warm", "--url", &fake.base], &[("BANATIE_API_KEY", KEY)], "a fox\na hen\n");
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.lines(),
        [
            "0\tgenerated\timg-0\ta fox",
            "1\terror\tbudget_exceeded: the project's generation budget is spent\ta hen"
        ]
    );
    assert!(run.stderr.contains("warm: 1 generated, 0 cached, 1 failed of 2 items"), "{}", run.stderr);
    assert_eq!(fake.received()[0].header("x-api-key"), Some(KEY), "the key from BANATIE_API_KEY");
    assert!(!run.all().contains(KEY));
}

#[test]
fn on_a_terminal_a_progress_bar_counts_and_failed_items_show_above_it() {
    let fake = Fake::start(|_| Answer::Lines {
        lines: vec![(now(), generated(0)), (ms(700), failed(1, "budget_exceeded", "spent for this hour"))],
        complete: true,
    });
    let file = std::env::temp_dir().join(format!("banatie-tty-{}.txt", std::process::id()));
    std::fs::write(&file, "a fox\na hen\n").unwrap();
    let path = file.display().to_string();
    let run = banatie_on_a_terminal(&["warm", "--url", &fake.base, &path], &[("BANATIE_API_KEY", KEY)]);
    let _ = std::fs::remove_file(&file);
    let shown = run.lines().join("\n");
    assert_eq!(run.code, Some(1), "{shown}");
    assert!(shown.contains("1 generated · 0 cached · 0 failed"), "the bar's counts: {shown}");
    assert!(shown.contains("1\terror\tbudget_exceeded: spent for this hour\ta hen"), "{shown}");
    assert!(!shown.contains("0\tgenerated"), "no line per item on a terminal: {shown}");
    assert!(shown.contains("warm: 1 generated, 0 cached, 1 failed of 2 items"), "{shown}");
    assert!(!shown.contains(KEY));
}

#[test]
fn a_refused_key_exits_2_with_the_services_message_and_never_the_key() {
    let body =
        json!({"error": {"code": "unauthorized", "message": "missing or unknown API key"}}).to_string();
    let fake = Fake::start(move |_| Answer::Refuse(401, body.clone()));
    let run = banatie(&["warm", "--url", &fake.base, "--key", KEY], &[], "a fox\n");
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.lines().is_empty());
    assert!(
        run.stderr.contains("the service refused the request: 401 unauthorized: missing or unknown API key"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains(KEY));
    // Even a server that repeats the key is not repeated.
    let echo =
        json!({"error": {"code": "forbidden", "message": format!("key {KEY} is not allowed")}}).to_string();
    let fake = Fake::start(move |_| Answer::Refuse(403, echo.clone()));
    let run = banatie(&["warm", "--url", &fake.base], &[("BANATIE_API_KEY", KEY)], "a fox\n");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("403 forbidden: key [key] is not allowed"), "{}", run.stderr);
    assert!(!run.all().contains(KEY));
}

#[test]
fn a_hundred_and_fifty_items_go_as_two_requests_one_after_the_other() {
    let fake = Fake::start(|items| Answer::Lines {
        lines: (0..items.len()).rev().map(|i| (if i == 0 { ms(300) } else { now() }, generated(i))).collect(),
        complete: true,
    });
    let input: String = (0..150).map(|i| format!("prompt {i}\n")).collect();
    let run = banatie(&["warm", "--url", &fake.base, "--key", KEY], &[], &input);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let sent = fake.received();
    assert_eq!(sent.iter().map(|r| r.items.len()).collect::<Vec<_>>(), [100, 50]);
    assert_eq!(sent[1].items[0], json!({"prompt": "prompt 100"}));
    // The second request came once the first was answered in full (the
    // fake would have taken it at once).
    assert!(sent[1].at > sent[0].last_line.unwrap(), "the second batch was sent before the first ended");
    let mut indexes: Vec<usize> =
        run.lines().iter().map(|l| l.split('\t').next().unwrap().parse().unwrap()).collect();
    indexes.sort();
    assert_eq!(indexes, (0..150).collect::<Vec<_>>());
    assert!(run.stderr.contains("150 generated, 0 cached, 0 failed of 150 items"), "{}", run.stderr);
}

#[test]
fn an_answer_that_ends_early_exits_2_and_sends_nothing_more() {
    for complete in [true, false] {
        let fake = Fake::start(move |_| Answer::Lines { lines: vec![(now(), generated(1))], complete });
        let run =
            banatie(&["warm", "--url", &fake.base, "--key", KEY, "--batch-size", "2"], &[], "a\nb\nc\n");
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert_eq!(run.lines(), ["1\tgenerated\timg-1\tb"]);
        assert_eq!(fake.received().len(), 1, "the second batch is not sent");
        assert!(run.stderr.contains("1 generated, 0 cached, 0 failed of 3 items"), "{}", run.stderr);
        assert!(run.stderr.contains("2 not answered"), "{}", run.stderr);
        let why = if complete {
            "the answer ended after 1 of 2 items"
        } else {
            "the answer broke off after 1 items were answered"
        };
        assert!(run.stderr.contains(why), "{}", run.stderr);
    }
}

#[test]
fn an_html_page_on_standard_input_warms_its_live_images_once_each() {
    let fake = Fake::start(|items| Answer::Lines {
        lines: (0..items.len()).map(|i| (now(), cached(i))).collect(),
        complete: true,
    });
    let page = r#"<picture>
      <source type="image/avif" srcset="/api/v1/live/generate?prompt=a+fox&amp;w=384&amp;format=avif 384w,
                                        /api/v1/live/generate?prompt=a+fox&amp;w=768&amp;format=avif 768w">
      <img src="/static/frame.png" srcset="/api/v1/live/generate?format=avif&amp;w=384&amp;prompt=a+fox 1x">
    </picture>"#;
    let run = banatie(&["warm", "--url", &fake.base, "--key", KEY, "--from-html", "-"], &[], page);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        fake.received()[0].items,
        [
            json!({"prompt": "a fox", "w": "384", "format": "avif"}),
            json!({"prompt": "a fox", "w": "768", "format": "avif"}),
        ]
    );
}

#[test]
fn usage_errors_exit_2_before_anything_is_sent() {
    let fake = Fake::start(|_| Answer::Refuse(500, "{}".into()));
    let url = fake.base.clone();
    // Arguments, environment, standard input, what it says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 5] = [
        (&["warm", "--url", &url], &[], "a fox\n", "no API key: give --key or set BANATIE_API_KEY"),
        (&["warm", "--url", &url, "--key", KEY], &[], "\n# nothing\n", "nothing to warm"),
        (
            &["warm", "--url", &url, "--key", KEY],
            &[],
            "a\nhttps://x.example/logo.png\n",
            "standard input, line 2:",
        ),
        (
            &["warm", "--url", "127.0.0.1:3000", "--key", KEY],
            &[],
            "a\n",
            "--url must be the service's base URL",
        ),
        (
            &["warm", "--url", &url, "--key", KEY, "/nonexistent/prompts.txt"],
            &[],
            "",
            "cannot read /nonexistent",
        ),
    ];
    for (args, env, input, says) in cases {
        let run = banatie(args, env, input);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert!(fake.received().is_empty());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = banatie(&["warm", "--url", &nobody, "--key", KEY], &[], "a\n");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains(&format!("cannot reach {nobody}/api/v1/live/warm")), "{}", run.stderr);
}

#[test]
fn help_says_what_warm_reads_and_how_it_ends() {
    let run = banatie(&["warm", "--help"], &[("BANATIE_API_KEY", KEY)], "");
    assert_eq!(run.code, Some(0));
    let help = run.lines().join("\n");
    for says in
        ["POST URL/api/v1/live/warm", "--from-html", "<source srcset>", "BANATIE_API_KEY", "Exit status"]
    {
        assert!(help.contains(says), "{says}: {help}");
    }
    assert!(!help.contains(KEY), "the key's value is never shown");
}
