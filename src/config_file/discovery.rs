//! Where the config file is: `--config`, `$BEDROCK_CONVERSE_CONFIG`, or the ECA editor's
//! own `~/.config/eca/config.json`.

use std::path::{Path, PathBuf};

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "BEDROCK_CONVERSE_CONFIG";

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A config file.
    File(PathBuf),
    /// No file: the configuration comes from environment variables
    /// ([`Config::from_env`](crate::client::config::Config::from_env)).
    Environment,
}

/// Picks the config source: `explicit` (`--config FILE`), else `$BEDROCK_CONVERSE_CONFIG`,
/// else `<home>/.config/eca/config.json` when `exists` says it does, else the environment.
///
/// Pure: the environment, home directory and file test are passed in.
pub fn locate_config(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
) -> ConfigSource {
    if let Some(p) = explicit {
        return ConfigSource::File(p.to_path_buf());
    }
    if let Some(p) = env(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return ConfigSource::File(PathBuf::from(p));
    }
    if let Some(home) = home {
        let p = home.join(".config").join("eca").join("config.json");
        if exists(&p) {
            return ConfigSource::File(p);
        }
    }
    ConfigSource::Environment
}

/// The home directory from `HOME` (or `USERPROFILE`).
pub fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .or_else(|| env("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_order() {
        let env_with = |v: &'static str| move |n: &str| (n == CONFIG_ENV).then(|| v.to_string());
        let none = |_: &str| None;
        let home = Path::new("/h");
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        assert_eq!(
            locate_config(Some(Path::new("/x.json")), &env_with("/e.json"), Some(home), &yes),
            ConfigSource::File("/x.json".into())
        );
        assert_eq!(
            locate_config(None, &env_with("/e.json"), Some(home), &yes),
            ConfigSource::File("/e.json".into())
        );
        assert_eq!(
            locate_config(None, &none, Some(home), &yes),
            ConfigSource::File("/h/.config/eca/config.json".into())
        );
        assert_eq!(
            locate_config(None, &none, Some(home), &no),
            ConfigSource::Environment
        );
        assert_eq!(locate_config(None, &none, None, &yes), ConfigSource::Environment);
    }

    #[test]
    fn home_from_home_then_userprofile() {
        let both = |n: &str| match n {
            "HOME" => Some("/home/a".to_owned()),
            "USERPROFILE" => Some("C:\\Users\\a".to_owned()),
            _ => None,
        };
        assert_eq!(home_dir(&both), Some(PathBuf::from("/home/a")));
        let windows = |n: &str| (n == "USERPROFILE").then(|| "C:\\Users\\a".to_owned());
        assert_eq!(home_dir(&windows), Some(PathBuf::from("C:\\Users\\a")));
        let empty = |n: &str| (n == "HOME").then(String::new);
        assert_eq!(home_dir(&empty), None);
    }
}
