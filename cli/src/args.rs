//! The command line: `banatie <COMMAND>`, its options and the help text
//! (which says what README's "Warm images ahead of visitors" says). Parses
//! only; each command runs in its own module.

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "banatie",
    version,
    about = "The operators' command line for banatie-live",
    long_about = "The operators' command line for banatie-live.\n\n\
        It talks to a deployment over HTTP (Spin, SpinKube, wasmCloud or banatie-host alike),\n\
        as any client does, and needs nothing else installed.",
    after_help = "Exit status: 0 all done; 1 some items failed; 2 a usage error, a request the service\n\
        refused whole, or a connection that failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make images before their first visitor (POST /api/v1/live/warm)
    #[command(long_about = WARM_ABOUT, after_help = WARM_AFTER)]
    Warm(Warm),
}

const WARM_ABOUT: &str = "\
Make images before their first visitor.

Reads prompts and live URLs (UTF-8 text), one per line, from FILE (or from standard input
when FILE is `-` or absent) and has the service make each image now, through
POST URL/api/v1/live/warm: at most 100 items a request, one request at a time. Cached images
stay as they are.

Each line is one item:
  a prompt                       a red fox in the snow
  a live URL (absolute or path)  https://img.example.com/api/v1/live/generate?prompt=a+fox&w=384
                                 /api/v1/live/generate?prompt=a+lighthouse&format=avif
  a public URL (its scope kept)  /cdn/acme-blog/live/hero?prompt=a+red+fox&aspect_ratio=16:9
A line that starts with `/`, `http://` or `https://` is a URL; blank lines and lines starting
with `#` are skipped. A URL's parameters become the item's (`ref` may repeat); a signed URL's
`project`, `exp` and `sig` are dropped (the key is the credential), and so is `progressive`.
Every item is made in the key's project at URL, whatever host or project its URL names.

With --from-html the input is an HTML page: each live URL in an <img src>, <img srcset> or
<source srcset> is an item, once however often it appears.";

const WARM_AFTER: &str = "\
Output: on a terminal, a progress bar (generated, cached, failed, of the total, and an ETA);
otherwise one line per item as the service answers it, tab-separated:
  INDEX  STATUS  IMAGE-ID or CODE: MESSAGE  PROMPT
STATUS is generated, cached or error; INDEX counts the items from 0 in input order; the
prompt is cut at 60 characters. The summary goes to standard error.

Exit status: 0 every item is cached or generated; 1 some item failed; 2 a usage error, a
request the service refused whole (its message is shown: a wrong key is 401), or a
connection that failed or an answer that ended early.";

#[derive(Debug, Args)]
pub struct Warm {
    /// The service's base URL, e.g. https://img.example.com (its warm route is URL/api/v1/live/warm)
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// A project's API key (never printed)
    #[arg(long, value_name = "KEY", env = "BANATIE_API_KEY", hide_env_values = true)]
    pub key: Option<Key>,

    /// Read FILE as an HTML page and warm the live URLs of its images
    #[arg(long)]
    pub from_html: bool,

    /// Items per request, 1 to 100 (fewer when a request would run past the server's time limit)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub batch_size: u8,

    /// Prompts and live URLs, one per line (or an HTML page with --from-html); `-` or none: standard input
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// An API key. Its `Debug` hides it; it is read from the command line or
/// `BANATIE_API_KEY` and used only as the `X-API-Key` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(redacted)")
    }
}

/// Never fails: clap would print a refused value, and this one is secret
/// (`warm` checks it and says what is wrong without it).
impl std::str::FromStr for Key {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Key, Self::Err> {
        Ok(Key(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("banatie").chain(args.iter().copied()))
    }

    #[test]
    fn warm_takes_a_url_a_key_and_a_file() {
        let cli = parse(&["warm", "--url", "http://127.0.0.1:1", "--key", "bl_k", "prompts.txt"]).unwrap();
        let Command::Warm(w) = cli.command;
        assert_eq!(w.url, "http://127.0.0.1:1");
        assert_eq!(w.key.as_ref().map(Key::expose), Some("bl_k"));
        assert_eq!(w.input, Some(PathBuf::from("prompts.txt")));
        assert_eq!(w.batch_size, 100);
        assert!(!w.from_html);
    }

    #[test]
    fn a_key_never_shows_in_debug_or_in_a_refused_command_line() {
        let cli = parse(&["warm", "--url", "u", "--key", "bl_secret_value"]).unwrap();
        assert!(!format!("{cli:?}").contains("bl_secret_value"));
        let e =
            parse(&["warm", "--url", "u", "--key", "bl_secret_value", "--batch-size", "101"]).unwrap_err();
        assert!(!e.to_string().contains("bl_secret_value"), "{e}");
    }

    #[test]
    fn batch_size_is_one_to_a_hundred() {
        assert!(parse(&["warm", "--url", "u", "--batch-size", "0"]).is_err());
        assert!(parse(&["warm", "--url", "u", "--batch-size", "101"]).is_err());
        let Command::Warm(w) = parse(&["warm", "--url", "u", "--batch-size", "7"]).unwrap().command;
        assert_eq!(w.batch_size, 7);
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
