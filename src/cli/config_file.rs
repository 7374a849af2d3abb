//! `--config cmdb.toml`: the same settings as the command-line options, in a file. Its keys
//! are the options' long names (`database-url`, `listen`, `max-page-size`...; `_` works as
//! well as `-`), for whichever command runs; a key no command knows is an error, so a typo
//! is never silently ignored. What wins: a flag on the command line, then the option's
//! environment variable, then the file, then the default.
//!
//! The file's values become command-line flags placed before the ones typed, for each
//! option the command line and the environment leave unset; clap then parses the whole as
//! usual, so a value from the file is checked exactly like a typed one.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Arg, ArgAction, CommandFactory};

use super::Cli;

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "CMDB_CONFIG";

/// The command line with the configuration file's settings added, when one is named.
pub fn with_config_file(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let root = Cli::command();
    // The command that runs: the deepest subcommand named (`token create`).
    let mut command = &root;
    let mut position = None;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if let Some(sub) = arg.to_str().and_then(|a| command.find_subcommand(a)) {
            command = sub;
            position = Some(i);
        }
    }
    let Some(position) = position else {
        return Ok(args);
    };
    let typed: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or_default().to_owned())
        .collect();
    let known = |arg: &Arg| arg.get_long().map(str::to_owned);
    let mut flags: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        if name == "config" {
            continue;
        }
        let Some(arg) = command
            .get_arguments()
            .chain(root.get_arguments())
            .find(|a| known(a).as_deref() == Some(name.as_str()))
        else {
            let anywhere = all_commands(&root)
                .iter()
                .flat_map(|c| c.get_arguments())
                .any(|a| known(a).as_deref() == Some(name.as_str()));
            if anywhere {
                continue;
            }
            bail!(
                "{}: unknown setting `{key}` (the settings are the long options of `cmdb <command> --help`)",
                path.display()
            );
        };
        let set_elsewhere = typed.contains(&name)
            || arg
                .get_env()
                .is_some_and(|env| std::env::var_os(env).is_some());
        if set_elsewhere {
            continue;
        }
        flags.extend(as_flags(&name, value, arg, &path)?);
    }
    let mut combined = args;
    let rest = combined.split_off(position + 1);
    combined.extend(flags);
    combined.extend(rest);
    Ok(combined)
}

/// `command` and every subcommand under it.
fn all_commands(command: &clap::Command) -> Vec<&clap::Command> {
    let mut all = vec![command];
    for sub in command.get_subcommands() {
        all.extend(all_commands(sub));
    }
    all
}

/// The configuration file the command line or the environment names.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().filter_map(|a| a.to_str());
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// The flags that say what `value` says for the option `name`.
fn as_flags(
    name: &str,
    value: &toml::Value,
    arg: &Arg,
    path: &std::path::Path,
) -> anyhow::Result<Vec<OsString>> {
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let scalar = |value: &toml::Value| -> anyhow::Result<String> {
        Ok(match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "{}: `{name}` must be a string, a number or a boolean, not {}",
                path.display(),
                other.type_str()
            ),
        })
    };
    match value {
        toml::Value::Boolean(on) if switch => Ok(if *on {
            vec![format!("--{name}").into()]
        } else {
            Vec::new()
        }),
        _ if switch => bail!(
            "{}: `{name}` is a switch: write true or false",
            path.display()
        ),
        toml::Value::Array(values) => values
            .iter()
            .map(|v| Ok(format!("--{name}={}", scalar(v)?).into()))
            .collect(),
        value => Ok(vec![format!("--{name}={}", scalar(value)?).into()]),
    }
}

#[cfg(test)]
mod tests {
    use super::with_config_file;
    use std::ffi::OsString;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_file_fills_what_the_command_line_leaves_unset() {
        let dir = tempfile::tempdir().expect("a directory");
        let file = dir.path().join("cmdb.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nmax_page_size = 50\nallow-anonymous-read = true\n\
             cors-origin = [\"https://a.example\", \"https://b.example\"]\n",
        )
        .expect("written");
        let config = file.to_str().expect("UTF-8");
        let combined = with_config_file(args(&[
            "cmdb",
            "serve",
            "--config",
            config,
            "--max-page-size",
            "10",
        ]))
        .expect("combined");
        let text: Vec<String> = combined
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            text.contains(&"--listen=127.0.0.1:9999".to_owned()),
            "{text:?}"
        );
        assert!(text.contains(&"--allow-anonymous-read".to_owned()));
        assert!(text.contains(&"--cors-origin=https://b.example".to_owned()));
        assert!(
            !text.contains(&"--max-page-size=50".to_owned()),
            "the command line wins: {text:?}"
        );
        std::fs::write(&file, "lisen = \"x\"\n").expect("written");
        let typo = with_config_file(args(&["cmdb", "serve", "--config", config]));
        assert!(typo.is_err_and(|e| e.to_string().contains("unknown setting `lisen`")));
    }
}
