use super::*;

const K1: &str = "first-api-key-0123456789abcdef012345";
const K2: &str = "second-api-key-0123456789abcdef01234";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_need_no_configuration() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:8080");
    assert_eq!(s.api.listen, "127.0.0.1:8081");
    assert_eq!(s.inbound.notify_paths, vec!["/v1.0/qr/qr-mpm-notify"]);
    assert_eq!(s.inbound.signature, SignatureMode::Symmetric);
    assert!(s.database.url.expose().starts_with("sqlite://data/"));
    assert!(s.inbound_credentials().unwrap().is_none());
    assert!(s.finpay_credentials().unwrap().is_none());
}

#[test]
fn environment_wins_over_the_file_which_wins_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9000\"\nmax_batch = 7\n[inbound]\ntimestamp_tolerance_secs = 60\n",
    )
    .unwrap();
    let s = Settings::load_from(
        Some(&file),
        env(&[
            ("FINPAY_QRIS__SERVER__LISTEN", "127.0.0.1:9100"),
            ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/a, /b"),
            ("FINPAY_QRIS__API__KEYS", &format!("{K1},{K2}")),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:9100");
    assert_eq!(s.server.max_batch, 7);
    assert_eq!(s.inbound.timestamp_tolerance_secs, 60);
    assert_eq!(s.inbound.notify_paths, vec!["/a", "/b"]);
    assert_eq!(s.api.keys.len(), 2);
}

#[test]
fn database_url_is_read_from_database_url_unless_ours_is_set() {
    let s = Settings::load_from(None, env(&[("DATABASE_URL", "postgres://a@h/db")])).unwrap();
    assert_eq!(s.database.url.expose(), "postgres://a@h/db");
    let s = Settings::load_from(
        None,
        env(&[
            ("DATABASE_URL", "postgres://a@h/db"),
            ("FINPAY_QRIS__DATABASE__URL", "sqlite://x.db"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database.url.expose(), "sqlite://x.db");
}

#[test]
fn a_bad_value_is_reported_with_its_key() {
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__LISTEN", "nowhere")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__SERVER__LISTEN");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__SIGNATURE", "rot13")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__INBOUND__SIGNATURE");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__TIMESTAMP_TOLERANCE_SECS", "soon")])).unwrap_err();
    assert!(e.to_string().contains("timestamp_tolerance_secs"), "{e}");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__API__MAX_CONNECTIONS", "0")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__API__MAX_CONNECTIONS");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS", "0")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS");
    let e = Settings::load_from(
        None,
        env(&[("FINPAY_QRIS__API__BODY_TIMEOUT_MS", "18446744073709551615")]),
    )
    .unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__API__BODY_TIMEOUT_MS");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__MAX_CONNECTIONS", "-1")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__SERVER__MAX_CONNECTIONS", "{e}");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__EVENTS__SENDERS", "0")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__EVENTS__SENDERS", "{e}");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__WORKER__RETENTION_DAYS", "40000")])).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        (
            "FINPAY_QRIS__WORKER__RETENTION_DAYS",
            "must be at most 36500 (0 keeps forever)"
        )
    );
}

#[test]
fn partial_inbound_credentials_name_the_missing_key() {
    let s = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__CLIENT_ID", "X")])).unwrap();
    assert_eq!(
        s.inbound_credentials().unwrap_err().key,
        "FINPAY_QRIS__INBOUND__PUBLIC_KEY"
    );
    let s = Settings::load_from(
        None,
        env(&[
            ("FINPAY_QRIS__INBOUND__CLIENT_ID", "X"),
            ("FINPAY_QRIS__INBOUND__PUBLIC_KEY", "/does/not/exist.pem"),
        ]),
    )
    .unwrap();
    let e = s.inbound_credentials().unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__INBOUND__PUBLIC_KEY");
}

#[test]
fn an_inbound_client_id_the_notify_endpoint_would_refuse_is_refused_at_start() {
    for id in ["FINPAY-SIMULATOR-0123456789-ABCDEFGHIJKLMN", "FINPAY PARTNER"] {
        let s = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__CLIENT_ID", id)])).unwrap();
        let e = s.inbound_credentials().unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__INBOUND__CLIENT_ID", "{id}");
        assert!(e.message.contains("X-PARTNER-ID"), "{}", e.message);
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let s = Settings::load_from(
        None,
        env(&[
            ("FINPAY_QRIS__INBOUND__CLIENT_SECRET", "super-secret-value"),
            ("FINPAY_QRIS__API__KEYS", "api-key-value-0123456789abcdef0123"),
            ("FINPAY_QRIS__DATABASE__URL", "postgres://u:db-password@h/db"),
        ]),
    )
    .unwrap();
    let dbg = format!("{s:?}");
    for secret in ["super-secret-value", "api-key-value", "db-password"] {
        assert!(!dbg.contains(secret), "{secret} leaked");
    }
}

#[test]
fn a_misspelt_variable_stops_the_start_naming_the_nearest_setting() {
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__LISTN", "127.0.0.1:1")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__SERVER__LISTN");
    assert!(e.message.contains("did you mean FINPAY_QRIS__SERVER__LISTEN?"), "{e}");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS_API__KEYS", K1)])).unwrap_err();
    assert!(e.message.contains("FINPAY_QRIS__API__KEYS"), "{e}");
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__DATABASE__ULR", "sqlite://x.db")])).unwrap_err();
    assert!(e.message.contains("FINPAY_QRIS__DATABASE__URL"), "{e}");
    // A section alone is answered with one of its own settings.
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER", "1")])).unwrap_err();
    assert!(e.message.contains("did you mean FINPAY_QRIS__SERVER__"), "{e}");
    // Not settings: the file's path and the sign command's secret.
    Settings::load_from(None, env(&[("FINPAY_QRIS_SIGN_SECRET", "s"), ("OTHER", "x")])).unwrap();
}

#[test]
fn every_settings_field_is_a_known_key() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    let (mut section, mut fields) = (String::new(), Vec::new());
    for line in format!("{s:#?}").lines() {
        let indent = line.len() - line.trim_start().len();
        let Some((name, _)) = line.trim().split_once(": ") else {
            continue;
        };
        match indent {
            4 => section = name.to_string(),
            8 => fields.push(format!("{section}.{name}")),
            _ => {}
        }
    }
    assert!(fields.len() > 40, "{fields:?}");
    for f in fields {
        assert!(known::all().any(|k| k == f), "{f} is missing from the known keys");
        let var = env_name(&f);
        let e = Settings::load_from(None, env(&[(&var, "x")])).err();
        assert!(e.is_none_or(|e| !e.message.contains("unknown setting")), "{var}");
    }
}

#[test]
fn an_unknown_key_in_the_file_is_named_with_the_nearest_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9000\"\n[worker]\npoll_interval = 5\n",
    )
    .unwrap();
    let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(e.key.starts_with("worker.poll_interval (in "), "{e}");
    assert!(e.message.contains("did you mean worker.poll_interval_ms?"), "{e}");
    std::fs::write(&file, "[servr]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
    let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(e.message.contains("did you mean server.listen?"), "{e}");
}

#[test]
fn a_file_that_does_not_parse_is_named_by_line_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let broken = [
        "[database]\nurl = \"postgres://finpay:DbPassw0rd@db:5432/finpay\n",
        "[api]\nkeys = [\n \"ops:DbPassw0rdDbPassw0rdDbPassw0rd01234\",\n",
        "[inbound]\nclient_secret = DbPassw0rd\n",
    ];
    for text in broken {
        std::fs::write(&file, text).unwrap();
        let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
        let said = e.to_string();
        assert!(!said.contains("DbPassw0rd"), "{said}");
        assert!(
            said.contains("is not valid TOML") && said.contains("at line "),
            "{said}"
        );
    }
}

#[test]
fn a_database_url_of_another_kind_is_refused_without_repeating_it() {
    let e = Settings::load_from(None, env(&[("DATABASE_URL", "mysql://u:DbPassw0rd@h/db")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__DATABASE__URL");
    assert!(e.message.contains("must start with postgres://"), "{e}");
    assert!(!e.to_string().contains("DbPassw0rd"), "{e}");
}

#[test]
fn event_times_past_their_range_are_refused_by_their_own_name() {
    for (var, value) in [
        ("FINPAY_QRIS__EVENTS__CONNECT_TIMEOUT_MS", "0"),
        ("FINPAY_QRIS__EVENTS__CONNECT_TIMEOUT_MS", "18446744073709551615"),
        ("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "300001"),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "9"),
        ("FINPAY_QRIS__EVENTS__DISABLE_AFTER_SECS", "10000000000000"),
        ("FINPAY_QRIS__EVENTS__ROTATION_OVERLAP_SECS", "604801"),
        ("FINPAY_QRIS__EVENTS__ROTATION_OVERLAP_SECS", "18446744073709551615"),
    ] {
        let e = Settings::load_from(None, env(&[(var, value)])).unwrap_err();
        assert_eq!(e.key, var, "{var}={value}: {e}");
        assert!(e.message.starts_with("expected "), "{e}");
    }
    let week = env(&[("FINPAY_QRIS__EVENTS__ROTATION_OVERLAP_SECS", "604800")]);
    assert_eq!(
        Settings::load_from(None, week).unwrap().events.rotation_overlap_secs,
        604_800
    );
}

#[test]
fn a_bad_value_is_named_where_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n[events]\ntimeout_ms = 0\n").unwrap();
    let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(e.key.starts_with("events.timeout_ms (in "), "{e}");
    let fixed = env(&[("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "1000")]);
    let e = Settings::load_from(Some(&file), fixed).unwrap_err();
    assert!(e.key.starts_with("server.listen (in "), "{e}");
    let overridden = env(&[
        ("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "0"),
        ("FINPAY_QRIS__SERVER__LISTEN", "x"),
    ]);
    let e = Settings::load_from(Some(&file), overridden).unwrap_err();
    assert!(
        e.key.starts_with("FINPAY_QRIS__"),
        "the environment's value is the one used: {e}"
    );
}

#[test]
fn an_enum_setting_lists_its_valid_values() {
    for (key, words) in known::ENUMS {
        let var = env_name(key);
        let e = Settings::load_from(None, env(&[(&var, "rot13")])).unwrap_err();
        assert_eq!(e.key, var);
        assert!(e.message.contains(&words.join(", ")), "{e}");
        for w in *words {
            Settings::load_from(None, env(&[(&var, w)])).unwrap_or_else(|e| panic!("{var}={w}: {e}"));
        }
    }
}

#[test]
fn a_short_api_key_is_refused_by_position_never_shown() {
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__API__KEYS", &format!("{K1},short-key"))])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__API__KEYS");
    assert!(e.message.contains("key 2 of 2"), "{e}");
    assert!(!e.to_string().contains("short-key"), "{e}");
}

#[test]
fn a_bad_value_of_a_setting_without_default_names_it() {
    let e = Settings::load_from(None, env(&[("FINPAY_QRIS__WORKER__ENABLED", "maybe")])).unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__WORKER__ENABLED", "{e}");
}

#[test]
fn a_value_that_would_be_replaced_or_lock_finpay_out_stops_the_start() {
    for (var, value) in [
        ("FINPAY_QRIS__SERVER__BODY_LIMIT_BYTES", "0"),
        ("FINPAY_QRIS__SERVER__WRITERS", "0"),
        ("FINPAY_QRIS__SERVER__MAX_BATCH", "0"),
        // More than SQLite binds in the statement reading a batch's stored keys.
        ("FINPAY_QRIS__SERVER__MAX_BATCH", "10001"),
        ("FINPAY_QRIS__SERVER__REQUEST_TIMEOUT_SECS", "0"),
        ("FINPAY_QRIS__DATABASE__MAX_CONNECTIONS", "0"),
        ("FINPAY_QRIS__FINPAY__TIMEOUT_SECS", "0"),
        ("FINPAY_QRIS__WORKER__BATCH_SIZE", "0"),
        ("FINPAY_QRIS__WORKER__LEASE_SECS", "1"),
        ("FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", "0"),
        ("FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", "0"),
        // Added to instants by the schedule: past a month they could overflow the clock.
        ("FINPAY_QRIS__WORKER__GRACE_SECS", "99999999999999"),
        ("FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", "2592001"),
        ("FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", "99999999999999"),
        ("FINPAY_QRIS__WORKER__POLL_INTERVAL_MS", "0"),
        ("FINPAY_QRIS__WORKER__DEFAULT_VALIDITY_SECS", "10"),
    ] {
        let e = Settings::load_from(None, env(&[(var, value)])).unwrap_err();
        assert_eq!(e.key, var, "{var}={value}: {e}");
        assert!(e.message.starts_with("must be from "), "{e}");
    }
}

#[test]
fn a_key_written_with_a_malformed_name_is_refused_not_taken_whole() {
    for name in ["bad name", "a-name-longer-than-forty-characters-is-refused"] {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__API__KEYS", &format!("{name}:{K1}"))])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__API__KEYS");
        assert!(e.message.contains("key 1 of 1 is written NAME:KEY"), "{e}");
        assert!(!e.to_string().contains(K1), "{e}");
    }
}

#[test]
fn a_list_written_in_the_file_as_one_string_is_comma_separated_as_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!("[api]\nkeys = \"ops:{K1}, {K2}\"\n[inbound]\nnotify_paths = [\"/a\"]\n"),
    )
    .unwrap();

    let s = Settings::load_from(Some(&file), env(&[])).unwrap();
    let names: Vec<String> = api_keys::api_keys(&s.api)
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0], "ops");
    assert_eq!(s.inbound.notify_paths, vec!["/a"]);

    let s = Settings::load_from(Some(&file), env(&[("FINPAY_QRIS__API__KEYS", K2)])).unwrap();
    assert_eq!(s.api.keys.len(), 1, "the environment still wins");
}

#[test]
fn the_two_listeners_on_one_port_are_refused_naming_the_api_listener() {
    for (public, internal) in [
        ("127.0.0.1:9000", "127.0.0.1:9000"),
        ("0.0.0.0:9000", "127.0.0.1:9000"),
        ("[::]:9000", "127.0.0.1:9000"),
    ] {
        let e = Settings::load_from(
            None,
            env(&[
                ("FINPAY_QRIS__SERVER__LISTEN", public),
                ("FINPAY_QRIS__API__LISTEN", internal),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("in FINPAY_QRIS__API__LISTEN:"), "{e}");
    }
    for (public, internal) in [
        ("127.0.0.1:9000", "127.0.0.2:9000"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("0.0.0.0:9000", "[::1]:9000"),
    ] {
        let ok = Settings::load_from(
            None,
            env(&[
                ("FINPAY_QRIS__SERVER__LISTEN", public),
                ("FINPAY_QRIS__API__LISTEN", internal),
            ]),
        );
        assert!(ok.is_ok(), "{public} and {internal} do not clash");
    }
}

#[test]
fn a_path_setting_without_its_leading_slash_is_refused_by_its_own_name() {
    for var in [
        "FINPAY_QRIS__REFUSALS__PATH_PREFIXES",
        "FINPAY_QRIS__INBOUND__TOKEN_PATH",
        "FINPAY_QRIS__INBOUND__NOTIFY_PATHS",
    ] {
        let e = Settings::load_from(None, env(&[(var, "pg")])).unwrap_err();
        assert!(e.to_string().contains(&format!("in {var}:")), "{e}");
    }
}

#[test]
fn a_log_level_that_is_no_level_stops_the_start_instead_of_silencing_the_log() {
    for level in ["verbose", "warnig", "finpay_qris=loud", "=debug"] {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__LOG__LEVEL", level)])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__LOG__LEVEL", "{level}: {e}");
    }
    for level in ["debug", "WARN", "info,finpay_qris=debug", "off"] {
        assert!(
            Settings::load_from(None, env(&[("FINPAY_QRIS__LOG__LEVEL", level)])).is_ok(),
            "{level}"
        );
    }
}

#[test]
fn a_notify_path_given_twice_or_equal_to_the_token_path_is_refused() {
    for paths in ["/a,/a", "/v1.0/access-token/b2b"] {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", paths)])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "{paths}: {e}");
    }
}

#[test]
fn a_path_that_is_not_plain_is_refused_as_it_would_never_be_served_as_written() {
    for (var, value) in [
        ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/v1.0/qr/{"),
        ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/cb/{x}"),
        ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/v1.0/*rest"),
        (
            "FINPAY_QRIS__INBOUND__NOTIFY_PATHS",
            "/v1.0/qr/qr-mpm-notify?src=finpay",
        ),
        ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/a b"),
        ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/v1.0/:notify"),
        ("FINPAY_QRIS__INBOUND__TOKEN_PATH", "/token#x"),
        ("FINPAY_QRIS__REFUSALS__PATH_PREFIXES", "/pg?"),
    ] {
        let e = Settings::load_from(None, env(&[(var, value)])).unwrap_err();
        assert_eq!(e.key, var, "{value}: {e}");
    }
    let plain = env(&[(
        "FINPAY_QRIS__INBOUND__NOTIFY_PATHS",
        "/v1.0/qr/qr-mpm-notify,/cb/finpay_v2-1.0",
    )]);
    assert!(Settings::load_from(None, plain).is_ok());
}

#[test]
fn token_lifetimes_and_the_journal_s_age_and_memory_are_bounded() {
    for (var, value) in [
        ("FINPAY_QRIS__INBOUND__TOKEN_TTL_SECS", "86401"),
        ("FINPAY_QRIS__REFUSALS__MAX_AGE_DAYS", "100000000"),
        ("FINPAY_QRIS__REFUSALS__MAX_AGE_DAYS", "0"),
        ("FINPAY_QRIS__REFUSALS__RECENT_TOKENS", "18446744073709551615"),
        ("FINPAY_QRIS__REFUSALS__RECENT_TOKENS", "65"),
    ] {
        let e = Settings::load_from(None, env(&[(var, value)])).unwrap_err();
        assert_eq!(e.key, var, "{e}");
    }
}

#[test]
fn an_empty_event_endpoint_is_unset_and_a_missing_half_is_named() {
    let s = Settings::load_from(None, env(&[("FINPAY_QRIS__EVENTS__ENDPOINT_URL", "")])).unwrap();
    assert!(s.events.endpoint_url.is_none());
    let e = Settings::load_from(
        None,
        env(&[(
            "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )]),
    )
    .unwrap_err();
    assert_eq!(e.key, "FINPAY_QRIS__EVENTS__ENDPOINT_URL", "{e}");
}
