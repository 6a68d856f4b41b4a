//! Flags merged over slipway.toml into a checked plan, and the pure parts of
//! a deploy: `deploy.env`, the shell lines run on the host (the command
//! line, its supervision, the lock holder, atomic writes), the ready target.
//! No IO (the bundle's files are `bundle`'s).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use sha2::Digest as _;
use slipway_config::Env;
use slipway_core::cli::UsageError;
use slipway_core::output::shell_quote;
use slipway_core::secret::RedactedUrl;

/// The name `deploy.env` has on the host.
pub(crate) const DEPLOY_ENV: &str = "deploy.env";

/// One file uploaded with a release.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct BundleFile {
    /// Its path under the remote path (`/`-separated).
    pub(crate) name: String,
    /// The checked local file it is read from (`None` for generated files).
    #[serde(skip)]
    pub(crate) local: Option<crate::bundle::LocalFile>,
    /// Its contents when generated (`deploy.env`).
    #[serde(skip)]
    pub(crate) contents: Option<Vec<u8>>,
    /// Unix permission bits.
    pub(crate) mode: u32,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Hex SHA-256 of the contents, when computed up front (a deploy hashes
    /// a file only when it may be unchanged, else while uploading it).
    pub(crate) sha256: Option<String>,
}

/// `deploy.env` as a bundle file, mode 0600.
pub(crate) fn deploy_env_file(images: &BTreeMap<String, String>) -> anyhow::Result<BundleFile> {
    let contents = render_deploy_env(images)?.into_bytes();
    Ok(BundleFile {
        name: DEPLOY_ENV.to_owned(),
        local: None,
        size: contents.len() as u64,
        sha256: Some(hex(&sha2::Sha256::digest(&contents))),
        contents: Some(contents),
        mode: 0o600,
    })
}

/// `KEY='value'` lines, which `docker compose --env-file`, `docker-compose`
/// and `set -a; . ./deploy.env` all read literally: inside single quotes
/// neither compose nor a shell expands `$`, backticks or `\`. A single quote,
/// newline or NUL cannot be written that way, so such a value is refused.
pub(crate) fn render_deploy_env(images: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut text = String::from(
        "# Written by ssh-deploy on every deploy; do not edit. Secrets belong in .env.production.\n",
    );
    for (var, value) in images {
        if let Some(bad) = value
            .chars()
            .find(|c| matches!(c, '\'' | '\n' | '\r' | '\0'))
        {
            return Err(UsageError::new(format!(
                "the value of `{var}` holds {}, which deploy.env cannot hold literally: `{}`",
                match bad {
                    '\'' => "a single quote",
                    '\0' => "a NUL byte",
                    _ => "a line break",
                },
                value.escape_debug()
            )));
        }
        let _ = writeln!(text, "{var}='{value}'");
    }
    Ok(text)
}

/// The environment the remote command receives, besides the login's own:
/// `SLIPWAY_ENV`, `SLIPWAY_RELEASE` and the image variables.
pub(crate) fn command_env(
    env: &str,
    release: u64,
    images: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("SLIPWAY_ENV".to_owned(), env.to_owned()),
        ("SLIPWAY_RELEASE".to_owned(), release.to_string()),
    ];
    vars.extend(images.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// The `--env-var` variables: each NAME a variable name, not one ssh-deploy
/// sets (`SLIPWAY_…`, the env's `images`) nor one of its `env` table, set in
/// the runner's environment (`lookup`); values are secrets.
pub(crate) fn secret_vars(
    names: &[String],
    env: &Env,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> anyhow::Result<Vec<(String, slipway_core::secret::SecretString)>> {
    let mut vars: Vec<(String, slipway_core::secret::SecretString)> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        // The value given is not shown: a value pasted in place of a name may be a secret.
        if !slipway_config::is_variable_name(name) {
            return Err(UsageError::new(
                "`--env-var` takes the name of an environment variable of the runner (letters, digits, `_`), e.g. `DATABASE_URL`, not its value; the value given is not shown: it may be a secret",
            ));
        }
        if name.starts_with("SLIPWAY_")
            || env.images.contains_key(name)
            || env.env_vars.contains_key(name)
        {
            return Err(UsageError::new(format!(
                "`--env-var {name}` names a variable ssh-deploy already sets for env `{}` (`SLIPWAY_…`, its `images` or its `env` table); give the runner's variable another name",
                env.name
            )));
        }
        if vars.iter().any(|(n, _)| n == name) {
            return Err(UsageError::new(format!(
                "`--env-var {name}` is given twice"
            )));
        }
        // A token can look like a name (`ghp_16C7…`, `Hunter2pass`): a name
        // that names no variable is not echoed; its position says which flag.
        let which = if names.len() == 1 {
            "`--env-var`".to_owned()
        } else {
            format!("`--env-var` number {} of {}", index + 1, names.len())
        };
        let value = lookup(name)
            .ok_or_else(|| UsageError::new(format!("the variable named by {which} is not set in this environment (its name is not shown: it may be a secret itself); set it (a CI secret) or drop the flag")))?
            .into_string()
            .map_err(|_| UsageError::new(format!("`--env-var {name}`: its value is not UTF-8")))?;
        if value.contains('\0') {
            return Err(UsageError::new(format!(
                "`--env-var {name}`: its value holds a NUL byte, which no environment variable can carry"
            )));
        }
        // Every value is a secret, and one of 1 to 3 bytes could not be
        // kept out of the output (docs/errors.md, "Short secrets").
        slipway_core::secret::check_len(&value, &format!("the value of `--env-var {name}`"))
            .with_context(|| {
                format!(
                    "cannot carry `--env-var {name}` as a secret; a value that is no secret belongs in the env's `env` table"
                )
            })?;
        vars.push((
            name.clone(),
            slipway_core::secret::SecretString::from(value),
        ));
    }
    Ok(vars)
}

/// A prefix of the command line that reads `vars` from its stdin, one
/// base64 line each, and exports them; and those lines. Secret values never
/// appear on a command line (which `ps` shows to every user of the host)
/// nor in a file. The `x` kept through `$(…)` keeps trailing newlines.
pub(crate) fn secret_reads(
    vars: &[(String, slipway_core::secret::SecretString)],
) -> (String, slipway_core::secret::SecretString) {
    use base64::Engine as _;
    use slipway_core::secret::ExposeSecret as _;
    let mut line = String::new();
    let mut lines = String::new();
    for (name, value) in vars {
        let _ = write!(
            line,
            "IFS= read -r slipway_v && {name}=$(printf '%s' \"$slipway_v\" | base64 -d && echo x) && {name}=${{{name}%x}} && export {name} && "
        );
        lines.push_str(&base64::engine::general_purpose::STANDARD.encode(value.expose_secret()));
        lines.push('\n');
    }
    if !vars.is_empty() {
        line.push_str("unset slipway_v && ");
    }
    (line, slipway_core::secret::SecretString::from(lines))
}

/// Where the command line unpacks the stream of changed bundle files
/// (`tarball`), under the remote path; removed before and after.
pub(crate) const STAGING: &str = ".slipway/staging";

/// The status, and the line printed before it, of a command line whose
/// upload did not arrive whole (cut short, a full disk): nothing was moved
/// into place and nothing was run. The line ends with the command line's
/// [`nonce`], so a command printing it and exiting 85 is still the
/// command failing.
pub(crate) const UPLOAD_FAILED: i32 = 85;
pub(crate) fn upload_tag(nonce: &str) -> String {
    format!("slipway-upload: failed {nonce}")
}

/// A fresh random word (16 hex digits) for one command line's markers
/// ([`upload_tag`], `remote::holder_tag`): never in a file, never the same
/// twice, so no command's output can be taken for the line's own.
pub(crate) fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// A stream from this size on is unpacked with large records.
pub(crate) const LARGE_STREAM: u64 = 1 << 20;

/// Up to this many staged files are synced one by one (`sync -- FILE…`, an
/// fsync each); more, with one `sync -f` of their file system (syncfs).
/// Each fsync of a new file waits for a journal commit of its own: 200
/// files of 4 KiB took 0.4–0.9 s here, one syncfs 0.04–0.13 s (load 9–11,
/// other builds writing to the same file system). A syncfs also flushes
/// what other writers left on that file system, so a handful of files
/// keep their own fsyncs.
pub(crate) const SYNC_EACH_AT_MOST: usize = 8;

/// The start of the command line when files changed (else nothing): unpack
/// the `staged` files, sent on stdin as one tar stream, into [`STAGING`]
/// under the remote path, check the stream arrived whole and sync them.
/// It runs before anything else of the line writes on the host, so a full
/// disk or a cut stream is the upload's failure, with nothing changed.
/// From [`LARGE_STREAM`] bytes on, GNU tar reads and writes 1 MiB records
/// (`-b 2048 -B`; busybox has no such flag, so it is asked first): its
/// default 10 KiB records take 20,000 reads and writes for 200 MB, which
/// made the unpacking twice as slow as `cat`.
pub(crate) fn unpack_line(
    remote_path: &str,
    staged: &[String],
    stream_size: u64,
    nonce: &str,
) -> String {
    let mut line = String::new();
    if !staged.is_empty() {
        let staging = |name: &str| shell_quote(&format!("{STAGING}/{name}"));
        let _ = write!(line, "cd {} && ", shell_quote(remote_path));
        // A stream cut short, a full disk, a signal: the staging directory
        // goes, the files in place stay as they were, and the line says so.
        let tar = format!("tar -x -p -o -f - -C {STAGING}");
        let tar = match stream_size >= LARGE_STREAM {
            true => format!(
                "case $(tar --version 2>/dev/null) in *GNU*) tar -x -p -o -b 2048 -B -f - -C {STAGING};; *) {tar};; esac"
            ),
            false => tar,
        };
        let _ = write!(
            line,
            "{{ rm -rf {STAGING} && mkdir {STAGING} && {tar} && [ -f {} ] && {{ sync ",
            staging(crate::tarball::MARKER)
        );
        // The files reach the disk before any is renamed into place, in
        // one process (`sync FILE…` and `sync -f`: coreutils 8.24+ and
        // busybox; else everything).
        if staged.len() <= SYNC_EACH_AT_MOST {
            line.push_str("--");
            for name in staged {
                let _ = write!(line, " {}", staging(name));
            }
        } else {
            let _ = write!(line, "-f {STAGING}");
        }
        let _ = write!(
            line,
            " 2>/dev/null || sync; }} || {{ rm -rf {STAGING}; echo '{}' >&2; exit {UPLOAD_FAILED}; }}; }} && ",
            upload_tag(nonce)
        );
    }
    line
}

/// The command line run on the host after [`unpack_line`]: move the staged
/// files into place (one `mv` per directory, each file an atomic rename),
/// then run the env's command in the remote path with exactly the given
/// variables added. Every word is shell-quoted.
pub(crate) fn remote_command_line(
    remote_path: &str,
    staged: &[String],
    vars: &[(String, String)],
    command: &str,
) -> String {
    let mut line = format!("cd {} && ", shell_quote(remote_path));
    if !staged.is_empty() {
        let staging = |name: &str| shell_quote(&format!("{STAGING}/{name}"));
        // The bundle's directories, which may be new: one `mkdir` for all.
        let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for name in staged {
            let dir = name.rsplit_once('/').map_or(".", |(dir, _)| dir);
            by_dir.entry(dir).or_default().push(name);
        }
        let dirs: Vec<&&str> = by_dir.keys().filter(|d| **d != ".").collect();
        if !dirs.is_empty() {
            line.push_str("mkdir -p --");
            for dir in dirs {
                let _ = write!(line, " {}", shell_quote(dir));
            }
            line.push_str(" && ");
        }
        // One process per directory: a process per file costs about 1 ms
        // each, 10 ms on a busy host.
        for (dir, names) in &by_dir {
            line.push_str("mv -f --");
            for name in names {
                let _ = write!(line, " {}", staging(name));
            }
            let _ = write!(line, " {}/ && ", shell_quote(dir));
        }
        let _ = write!(line, "rm -rf {STAGING} && ");
    }
    line.push_str("exec env");
    for (name, value) in vars {
        let _ = write!(line, " {}", shell_quote(&format!("{name}={value}")));
    }
    let _ = write!(line, " sh -c {}", shell_quote(command));
    line
}

/// The lock holder's step that starts a command line (see
/// `lock::HeldLock::run_line`): `line` in a session of its own (`setsid`),
/// with the SSH session's PID as `$1`, which prints `slipway-done: <done>
/// <status>` when it ends; the step ends once `line` has its stdin, so the
/// holder goes back to its heartbeat while `line` runs.
///
/// With `total` bytes for it (secrets, files): in `state_dir`, a FIFO,
/// which `line` reads; the holder copies exactly `total` bytes of its
/// stdin into it (through descriptor 3: a background command of a shell
/// without job control, dash's or BusyBox's, reads `/dev/null`
/// otherwise), and `line` reads what is left of them (if it stopped
/// early) before its end line. A watchdog stops the copy when no byte came
/// for the heartbeat timeout (`$slipway_w` seconds, judged by the copy's
/// `rchar` in `/proc`; where that cannot be read, once `max_secs` passed):
/// the step then ends with [`SHORT_READ`], and the holder with it. With
/// none (a redeploy of unchanged files), `line` reads `/dev/null`: no
/// FIFO, copy or watchdog, four processes fewer.
pub(crate) fn holder_line_step(
    state_dir: &str,
    line: &str,
    total: u64,
    max_secs: u64,
    step: &str,
    done: &str,
) -> String {
    let end = print_done(&shell_quote(done), "$s");
    if total == 0 {
        let wrapped = format!("( {line} ); s=$?; {end}");
        return format!(
            "setsid sh -c {} slipway \"$PPID\" </dev/null &",
            shell_quote(&wrapped)
        );
    }
    let copy = format!("dd bs=65536 count={total} iflag=count_bytes,fullblock 2>/dev/null");
    let wrapped = format!("( {line} ); s=$?; cat >/dev/null; {end}");
    // Without a readable `/proc/<pid>/io`, the copy is bounded by
    // `max_secs` (the deploy's `--timeout`) instead.
    let watchdog = format!(
        "o=; i=0; j=0; while sleep 1; do [ -d /proc/$d ] || exit 0; j=$((j+1)); if n=$(grep rchar /proc/$d/io 2>/dev/null); then if [ \"$n\" = \"$o\" ]; then i=$((i+1)); else i=0; fi; o=$n; elif [ $j -gt {max_secs} ]; then i=$slipway_w; fi; [ $i -lt $slipway_w ] || {{ kill $d; exit 0; }}; done"
    );
    // The FIFO's name is the step's nonce: one left by a killed holder is
    // a leftover of the next deploy's first line, which may also unlink
    // this one once both ends are open (so the last `rm` only runs when it
    // is still there).
    format!(
        "cd {state} && f=.stdin-{step}.slipway-tmp && mkfifo -m 600 \"$f\" || {{ echo 'cannot make a FIFO for the upload in '{state} >&2; exit {SHORT_READ}; }}; setsid sh -c {wrapped} slipway \"$PPID\" <\"$f\" & {{ {copy} <&3 >\"$f\" & d=$!; }} 3<&0; ( {watchdog} ) </dev/null >/dev/null 2>&1 & w=$!; wait $d; s=$?; kill $w 2>/dev/null; [ ! -p \"$f\" ] || rm -f \"$f\"; [ $s = 0 ] || exit {SHORT_READ}",
        state = shell_quote(state_dir),
        wrapped = shell_quote(&wrapped),
    )
}

/// `line` under supervision, so that nothing a deploy started outlives its
/// lock. sshd makes the login shell that runs `line` a session and process
/// group leader, and every process the line starts (the env's command and
/// its children) stays in that group; the shell first writes its PID to
/// `pid_file`, for [`stop_command_line`].
///
/// `parent` is the shell word for the PID of the SSH session's process:
/// `$PPID` in a login shell of its own, the one given as `$1` when the
/// lock holder starts the line (`lock::HeldLock::run_line`).
///
/// Two guards, both on the host:
/// - the line first takes `run_lock` (a `flock` kept open by every process
///   it starts), waiting up to `wait_secs` for the processes of an earlier
///   deploy to be gone, so two commands never overlap even when a killed
///   deploy's command is still being stopped;
/// - a watchdog in the background checks every second that the SSH session's process (the shell's
///   parent) and the deploy's lock holder (`holder_pid`) still run (a
///   zombie, unreaped under a stopped sshd, counts as gone); once either is
///   gone (the connection died, or the holder gave up the lock)
///   it sends SIGTERM to the group, and SIGKILL 5 s later. It ends by
///   itself when the shell does (up to a second later), and does not hold
///   `run_lock`: the command's processes do, and the next deploy's command
///   must not wait for this watchdog's next look. It needs `/proc` (Linux). It holds none
///   of the channel's pipes, not even for its check of `/proc` (its one
///   process is redirected as a whole): sshd ends the channel when the
///   last holder of its stdout closes it, so a watchdog holding it would
///   keep every deploy waiting up to a second for its next check.
pub(crate) fn supervised_command_line(
    pid_file: &str,
    run_lock: &str,
    wait_secs: u64,
    holder_pid: u32,
    parent: &str,
    line: &str,
) -> String {
    format!(
        "p={parent} && h={holder_pid} && exec 9>>{run_lock} && {{ flock -w {wait_secs} 9 || {{ echo \"the command of an earlier deploy still runs on the host (it holds {run_lock})\" >&2; exit 75; }}; }} && echo $$ > {pid_file} && {{ ([ -d /proc/$p ] || exit 0; trap '' TERM; z() {{ [ -d /proc/$1 ] && ! grep -q '^[0-9]* (.*) Z' /proc/$1/stat 2>/dev/null; }}; while sleep 1 && z $$; do {{ z $p && z $h; }} || {{ kill -TERM -$$; sleep 5; kill -KILL -$$; break; }}; done) </dev/null >/dev/null 2>&1 9>&- & }} && {line}",
        pid_file = shell_quote(pid_file),
        run_lock = shell_quote(run_lock),
    )
}

/// Stops what a [`supervised_command_line`] started, from a second channel:
/// SIGTERM to the process group named in `pid_file`, up to 10 s for every
/// process of the group to end (the command's own cleanup, whatever shell
/// leads the group; a zombie, which only waits to be reaped, counts as
/// ended: `/proc/<pid>/stat`'s state and group, read by one `awk` for all
/// processes), then SIGKILL to whatever is left of it. Exits 0 when there
/// was nothing to stop, too.
pub(crate) fn stop_command_line(pid_file: &str) -> String {
    format!(
        "p=$(cat {pid_file} 2>/dev/null) && [ -n \"$p\" ] || exit 0; a() {{ cat /proc/[0-9]*/stat 2>/dev/null | awk -v p=\"$p\" '{{ sub(/.*\\) /, \"\"); if ($1 != \"Z\" && $3 == p) f = 1 }} END {{ exit !f }}'; }}; kill -TERM -$p 2>/dev/null; e=$(($(date +%s) + 10)); while a && [ $(date +%s) -lt $e ]; do sleep 0.2; done; ! a || kill -KILL -$p 2>/dev/null; exit 0",
        pid_file = shell_quote(pid_file),
    )
}

/// What the lock holder prints, each on a line of its own.
pub(crate) const LOCK_TAG: &str = "slipway-lock:";

/// How the host says a step (or a command line, or a warm shell's command)
/// ended: `slipway-done: <nonce> <status>` on a line of its own.
pub(crate) const DONE_TAG: &str = "slipway-done: ";

/// The shell code that prints [`DONE_TAG`] for the shell words `nonce` and
/// `status`: a newline first, whatever the output ended with, and the tag
/// in two parts, so that a shell tracing its commands (`set -x` in an rc
/// file) never shows the line whole.
pub(crate) fn print_done(nonce: &str, status: &str) -> String {
    format!("printf '\\n%s%s %s\\n' '{DONE_TAG}' {nonce} {status}")
}

/// The deploy lock, held by the process this line becomes on the host, on
/// its own channel of the deploy's SSH connection: it opens `lock_file`
/// and takes a `flock` on it (waiting up to `wait_secs` after printing
/// `slipway-lock: waiting`), prints `slipway-lock: locked <pid> <reads>`,
/// then reads its stdin, where ssh-deploy sends a byte every few seconds.
/// It exits, and the kernel frees the lock, on end of file (released, or
/// the connection closed), on anything it does not expect, or when no byte
/// came for `heartbeat_secs` (the connection went silent, or ssh-deploy
/// hangs): a lock never outlives the deploy's session, whatever happens to
/// it.
///
/// The holder also runs the deploy's steps that need the lock and no stdin
/// of their own (a release record): `r`, then a line `<token> <nonce>
/// <code>`, runs `code` in a subshell (which may read the exact bytes sent
/// after the line), then prints `slipway-done: <nonce> <status>`; a line
/// without `token`, which only ssh-deploy knows, ends the holder, and so
/// does a step that could not read its bytes ([`SHORT_READ`]). A step's
/// reads are bounded by `heartbeat_secs` too (`$slipway_w`). `<reads>` is
/// `exact` when `dd` stops at a byte count (`iflag=count_bytes`, GNU and
/// BusyBox) and `setsid` and `mkfifo` exist, so that the command line runs
/// from the holder too (see `lock::HeldLock::run_line`); else `bytes`
/// (what a step reads is read a byte at a time, and the command line
/// gets a login shell of its own). `set +e`: an rc file's `set -e` must
/// not end the holder when a step fails. Where the shell's own `read`
/// takes `-n 1` and `-t` (bash, BusyBox ash, ksh; checked by what it
/// does, as zsh's `-n` means something else), the holder reads its bytes
/// and lines with it; else with `timeout` and `dd` or `sh` (dash): two
/// processes fewer per byte or line where it can.
pub(crate) fn lock_holder_line(
    lock_file: &str,
    wait_secs: u64,
    heartbeat_secs: u64,
    token: &str,
) -> String {
    format!(
        "set +e; command -v flock >/dev/null && command -v timeout >/dev/null || {{ echo '{LOCK_TAG} missing flock or timeout (util-linux, coreutils)'; exit 0; }}; exec 9>>{lock_file} || exit 1; flock -n 9 || {{ echo '{LOCK_TAG} waiting'; flock -w {wait_secs} 9; }} || {{ echo '{LOCK_TAG} busy'; exit 0; }}; slipway_w={heartbeat_secs}; r=bytes; [ \"$(printf ab | {{ dd bs=2 count=1 iflag=count_bytes,fullblock 2>/dev/null >/dev/null; cat; }})\" = b ] && command -v setsid >/dev/null && command -v mkfifo >/dev/null && r=exact; q=; [ \"$(printf 'ab\\ncd' | {{ IFS= read -r -n 1 -t 5 x && IFS= read -r -t 5 y && printf %s/%s \"$x\" \"$y\"; }} 2>/dev/null)\" = a/b ] && q=1; echo \"{LOCK_TAG} locked $$ $r\"; while if [ -n \"$q\" ]; then IFS= read -r -n 1 -t $slipway_w c; else c=$(timeout $slipway_w dd bs=1 count=1 2>/dev/null) && [ -n \"$c\" ]; fi; do [ \"$c\" = k ] && continue; [ \"$c\" = r ] || break; if [ -n \"$q\" ]; then IFS= read -r -t $slipway_w l; else l=$(timeout $slipway_w sh -c 'IFS= read -r l && printf %s \"$l\"'); fi || break; case $l in '{token} '*) l=${{l#'{token} '}}; n=${{l%% *}}; (eval \"${{l#* }}\") 9>&-; s=$?; {done}; [ $s != {SHORT_READ} ] || break;; *) break;; esac; done",
        lock_file = shell_quote(lock_file),
        done = print_done("\"$n\"", "$s"),
    )
}

/// The status of a lock holder's step that could not read all the bytes
/// sent for it (the network went silent, the connection closed): where the
/// next step starts is unknown, so the holder stops, and the lock is free.
pub(crate) const SHORT_READ: i32 = 88;

/// Prints `slipway-lock: free` or `slipway-lock: held` for `lock_file`,
/// creating nothing.
pub(crate) fn lock_probe_line(lock_file: &str) -> String {
    format!(
        "if [ ! -e {lock_file} ]; then echo '{LOCK_TAG} free'; elif flock -n {lock_file} true; then echo '{LOCK_TAG} free'; else echo '{LOCK_TAG} held'; fi",
        lock_file = shell_quote(lock_file),
    )
}

/// Stops the lock holder `pid` (its process group), if that process really
/// holds `lock_file` open on its descriptor 9 (so a PID reused since is
/// never signalled), and waits up to 10 s for the lock to be free; prints
/// the probe's answer.
pub(crate) fn force_release_line(lock_file: &str, pid: u32) -> String {
    format!(
        "[ /proc/{pid}/fd/9 -ef {lock_file} ] && kill -TERM -{pid} 2>/dev/null; flock -w 10 {lock_file} true && echo '{LOCK_TAG} free' || echo '{LOCK_TAG} held'",
        lock_file = shell_quote(lock_file),
    )
}

/// Writes its stdin to `path` atomically: a temporary name beside it,
/// synced to disk, then renamed over it; on any failure the temporary file
/// is removed and the old file stays as it was. The shell's own messages
/// (`No space left on device`) say why it failed.
pub(crate) fn write_file_line(path: &str, mode: u32) -> String {
    write_line(path, mode, "cat >| \"$t\"")
}

/// As [`write_file_line`], from the shell variable `var`, which holds the
/// contents and then an `x` (see `remote::write_atomic`); contents of
/// another size (cut short, or with a NUL, which no shell keeps) are
/// refused by their length in bytes before anything is written (the
/// shell's `${#var}`, else `wc -c` where that counts characters). Through
/// `cat`, whose error names the cause (`No space left on device`), which
/// dash's and BusyBox's `printf` do not, and whose status tells, which
/// zsh's `printf` does not for a write of 8 KiB or more; with `>|`, which
/// an rc file's noclobber does not refuse.
pub(crate) fn write_sized_var_line(path: &str, mode: u32, var: &str, size: usize) -> String {
    write_line(
        path,
        mode,
        &format!(
            "{{ [ ${{#{var}}} -eq {n} ] || [ $(printf %s \"${var}\" | wc -c) -eq {n} ]; }} && printf %s \"${{{var}%x}}\" | cat >| \"$t\"",
            n = size + 1
        ),
    )
}

fn write_line(path: &str, mode: u32, reader: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or((".", path));
    let dir = if dir.is_empty() { "/" } else { dir };
    format!(
        "cd {dir} && t={temp} && {{ (umask 077 && {reader}) && chmod {mode:o} \"$t\" && {{ sync \"$t\" 2>/dev/null || sync; }} && mv -f \"$t\" {name} || {{ rm -f \"$t\"; exit 1; }}; }}",
        dir = shell_quote(dir),
        temp = shell_quote(&format!(".{name}.slipway-tmp")),
        name = shell_quote(name),
    )
}

/// Where readiness is probed, from the host's side of the SSH connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadyTarget {
    /// The URL as configured.
    pub(crate) url: String,
    /// Host name or address, as the host resolves it.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
    /// The HTTP path and query; `None` for `tcp://`.
    pub(crate) http_path: Option<String>,
}

impl ReadyTarget {
    /// The URL as shown to people: secret-looking query values (`?token=…`)
    /// as `***`.
    pub(crate) fn shown(&self) -> RedactedUrl<'_> {
        RedactedUrl(&self.url)
    }
}

/// Parses an `http://` or `tcp://` ready URL. `https://` is refused: the
/// probe runs through the SSH connection, where the host's own plain port is
/// the one to ask.
pub(crate) fn ready_target(url: &str) -> anyhow::Result<ReadyTarget> {
    // The URL may hold a password or a token: messages show it redacted.
    let shown = RedactedUrl(url);
    let fail = |why: &str| {
        UsageError::new(format!(
            "ready URL `{shown}` {why}; expected `http://host[:port]/path` or `tcp://host:port` as seen from the host, e.g. `http://127.0.0.1:8080/api/ready`"
        ))
    };
    let (is_http, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        (false, rest)
    } else if url.starts_with("https://") {
        return Err(fail(
            "is HTTPS, which the probe through the SSH connection does not speak; use the app's plain HTTP port on the host",
        ));
    } else {
        return Err(fail("has an unsupported scheme"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(fail("holds credentials"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| fail("has an unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(fail("has no host"));
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| fail("has an invalid port"))?,
        None if is_http => 80,
        None => return Err(fail("has no port")),
    };
    Ok(ReadyTarget {
        url: url.to_owned(),
        host: host.to_owned(),
        port,
        http_path: is_http.then(|| {
            if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            }
        }),
    })
}

/// Whether a private key (PEM, PKCS#8 or OpenSSH format) is encrypted with
/// a passphrase. libssh2 would only say "Unsupported private key format"
/// after connecting; this is checked before.
pub(crate) fn is_encrypted_key(text: &str) -> bool {
    use base64::Engine as _;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return true;
    }
    let Some(body) = text
        .split_once("-----BEGIN OPENSSH PRIVATE KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END OPENSSH PRIVATE KEY-----"))
        .map(|(body, _)| body.split_whitespace().collect::<String>())
    else {
        return false;
    };
    // `openssh-key-v1\0`, then the cipher's name as a length-prefixed
    // string: `none` for a key without passphrase (OpenSSH's PROTOCOL.key).
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body) else {
        return false;
    };
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let len = u32::from_be_bytes(*len) as usize;
    rest.get(..len).is_some_and(|cipher| cipher != b"none")
}

/// Refuses a `remote_path` whose deploy would write into a system or home
/// directory itself: `/`, a top-level directory (`/srv`, `/etc`, `/root`),
/// anything under `/proc`, `/sys`, `/dev`, `/boot`, `/etc`, `/bin`, `/sbin`,
/// `/lib*` or `/usr` (but `/usr/local/<dir>/…`), `/home/<user>` and
/// `/var/<dir>` themselves, and any path with `.` or `..` in it.
pub(crate) fn check_remote_path(env: &Env) -> anyhow::Result<()> {
    check_remote_path_of(&env.name, &env.remote_path)
}

fn check_remote_path_of(name: &str, path: &str) -> anyhow::Result<()> {
    let refuse = |why: &str| {
        UsageError::new(format!(
            "`remote_path = \"{path}\"` of env `{}` {why}; ssh-deploy writes its bundle, `deploy.env` and `.slipway/` there, so give a directory of the app's own, e.g. `/srv/{}`",
            name, name
        ))
    };
    if !path.starts_with('/') {
        return Err(refuse("is not an absolute path"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(refuse("holds `.` or `..`"));
    }
    if path.contains(['\n', '\r', '\0']) {
        return Err(refuse("holds a line break or NUL"));
    }
    const SYSTEM: &[&str] = &[
        "proc", "sys", "dev", "boot", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
        "usr",
    ];
    match parts.as_slice() {
        [] => Err(refuse("is the root directory")),
        [_] => Err(refuse("is a top-level directory")),
        ["usr", "local", _, _, ..] => Ok(()),
        [first, ..] if SYSTEM.contains(first) => Err(refuse("is a system directory")),
        ["home" | "var", _] => Err(refuse("is a home or system directory itself")),
        _ => Ok(()),
    }
}

/// Checks a `--host-key-fingerprint` value.
pub(crate) fn parse_fingerprint(value: &str) -> anyhow::Result<String> {
    let body = value.strip_prefix("SHA256:").unwrap_or_default();
    let valid = body.len() == 43
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(UsageError::new(format!(
            "invalid `--host-key-fingerprint {value}`: expected `SHA256:` and 43 base64 characters, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host"
        )))
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// What the preflight line prints, each on a line of its own.
pub(crate) const PREFLIGHT_TAG: &str = "slipway-preflight:";

/// The preflight's checks of a host in one line, creating nothing: prints
/// `slipway-preflight: free <KiB>` for the file system of `remote_path` (or
/// of its nearest existing parent), `slipway-preflight: locked` when
/// `lock_file` is held, and with `is_docker_needed`
/// `slipway-preflight: no docker` when no `docker` client is on the PATH.
pub(crate) fn preflight_line(remote_path: &str, lock_file: &str, is_docker_needed: bool) -> String {
    let mut line = format!(
        "d={remote}; while [ ! -d \"$d\" ]; do d=$(dirname -- \"$d\"); done; echo \"{PREFLIGHT_TAG} free $(df -Pk -- \"$d\" | awk 'NR==2 {{print $4}}')\"; l={lock}; if command -v flock >/dev/null && [ -e \"$l\" ] && ! flock -n \"$l\" true; then echo '{PREFLIGHT_TAG} locked'; fi",
        remote = shell_quote(remote_path),
        lock = shell_quote(lock_file),
    );
    if is_docker_needed {
        let _ = write!(
            line,
            "; command -v docker >/dev/null || echo '{PREFLIGHT_TAG} no docker'"
        );
    }
    line
}

/// The env's `preflight` command, run in `remote_path` (in the login's home
/// when the remote path does not exist yet), with `SLIPWAY_ENV` set.
pub(crate) fn preflight_command_line(remote_path: &str, env: &str, command: &str) -> String {
    format!(
        "{{ cd {remote} 2>/dev/null || cd; }} && exec env {env_var} sh -c {command}",
        remote = shell_quote(remote_path),
        env_var = shell_quote(&format!("SLIPWAY_ENV={env}")),
        command = shell_quote(command),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_env(pairs: &[(&str, &str)], expected: Result<&str, &str>) {
        let images: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let actual = render_deploy_env(&images).map_err(|e| e.to_string());
        let expected = expected.map(|body| {
            format!("# Written by ssh-deploy on every deploy; do not edit. Secrets belong in .env.production.\n{body}")
        });
        assert_eq!(actual, expected.map_err(str::to_owned));
    }

    #[test]
    fn deploy_env_values_are_single_quoted_literals() {
        check_env(
            &[("APP_IMAGE", "r/app@sha256:ab")],
            Ok("APP_IMAGE='r/app@sha256:ab'\n"),
        );
        check_env(
            &[("A", "$(touch /tmp/pwned)"), ("B", "`id` ${X} \\n")],
            Ok("A='$(touch /tmp/pwned)'\nB='`id` ${X} \\n'\n"),
        );
        check_env(
            &[("A", "x'; touch /tmp/pwned; '")],
            Err(
                "the value of `A` holds a single quote, which deploy.env cannot hold literally: `x\\'; touch /tmp/pwned; \\'`",
            ),
        );
        check_env(
            &[("A", "x\nB=y")],
            Err(
                "the value of `A` holds a line break, which deploy.env cannot hold literally: `x\\nB=y`",
            ),
        );
    }

    #[track_caller]
    fn check_line(staged: &[&str], vars: &[(&str, &str)], command: &str, expected: &str) {
        let staged: Vec<String> = staged.iter().map(|n| (*n).to_owned()).collect();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(
            format!(
                "{}{}",
                unpack_line("/srv/my app", &staged, 42, "n0nce"),
                remote_command_line("/srv/my app", &staged, &vars, command)
            ),
            expected
        );
    }

    #[test]
    fn staged_files_are_unpacked_synced_once_and_moved_per_directory() {
        check_line(
            &["a/x", "top", "a/y", "b/c/z"],
            &[],
            "./deploy.sh",
            "cd '/srv/my app' && { rm -rf .slipway/staging && mkdir .slipway/staging && tar -x -p -o -f - -C .slipway/staging && [ -f .slipway/staging/.slipway-end ] && { sync -- .slipway/staging/a/x .slipway/staging/top .slipway/staging/a/y .slipway/staging/b/c/z 2>/dev/null || sync; } || { rm -rf .slipway/staging; echo 'slipway-upload: failed n0nce' >&2; exit 85; }; } && cd '/srv/my app' && mkdir -p -- a b/c && mv -f -- .slipway/staging/top ./ && mv -f -- .slipway/staging/a/x .slipway/staging/a/y a/ && mv -f -- .slipway/staging/b/c/z b/c/ && rm -rf .slipway/staging && exec env sh -c ./deploy.sh",
        );
    }

    #[test]
    fn many_staged_files_are_synced_with_one_syncfs() {
        let staged: Vec<String> = (0..=SYNC_EACH_AT_MOST).map(|n| format!("f{n}")).collect();
        assert_eq!(
            unpack_line("/srv", &staged, 4096, "n0nce"),
            "cd /srv && { rm -rf .slipway/staging && mkdir .slipway/staging && tar -x -p -o -f - -C .slipway/staging && [ -f .slipway/staging/.slipway-end ] && { sync -f .slipway/staging 2>/dev/null || sync; } || { rm -rf .slipway/staging; echo 'slipway-upload: failed n0nce' >&2; exit 85; }; } && "
        );
        // The host's own `sync` takes the flag: coreutils, and busybox.
        let dir = tempfile::tempdir().expect("temp dir");
        for sync in [&["sync"][..], &["busybox", "sync"][..]] {
            let status = std::process::Command::new(sync[0])
                .args(&sync[1..])
                .args(["-f"])
                .arg(dir.path())
                .status()
                .unwrap_or_else(|e| panic!("cannot run {sync:?} (busybox-static): {e}"));
            assert!(status.success(), "{sync:?}");
        }
    }

    #[test]
    fn the_supervised_line_takes_the_run_lock_records_its_pid_then_runs_the_line() {
        let pid_file = "/srv/my app/.slipway/command.pid";
        let line = supervised_command_line(
            pid_file,
            "/srv/my app/.slipway/run.lock",
            30,
            42,
            "$PPID",
            "cd /srv && exec env sh -c true",
        );
        assert!(
            line.starts_with(
                "p=$PPID && h=42 && exec 9>>'/srv/my app/.slipway/run.lock' && { flock -w 30 9 || "
            ),
            "{line}"
        );
        assert!(
            line.contains("&& echo $$ > '/srv/my app/.slipway/command.pid' && { "),
            "{line}"
        );
        // The watchdog runs in the background, away from the channel's pipes.
        assert!(
            line.ends_with(
                " </dev/null >/dev/null 2>&1 9>&- & } && cd /srv && exec env sh -c true"
            ),
            "{line}"
        );
        let stop = stop_command_line(pid_file);
        assert!(
            stop.starts_with("p=$(cat '/srv/my app/.slipway/command.pid' 2>/dev/null)"),
            "{stop}"
        );
    }

    /// The processes other than this one that hold `pipe` (`pipe:[inode]`)
    /// open, each with its command line (NULs as spaces).
    fn holders(pipe: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in fs_err::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            let holds = fds
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == pipe));
            if holds {
                let cmdline = fs_err::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(
                    String::from_utf8_lossy(&cmdline)
                        .replace('\0', " ")
                        .trim()
                        .to_owned(),
                );
            }
        }
        found
    }

    #[test]
    fn the_watchdog_holds_none_of_the_channels_pipes() {
        use std::io::BufRead as _;
        use std::os::fd::AsRawFd as _;
        // sshd ends the channel (and ssh-deploy its step) once nobody holds
        // its stdout; while the command runs, only the command may. The
        // line runs in the user's login shell: bash forks where dash and
        // busybox do not.
        for shell in [&["bash"][..], &["sh"][..], &["busybox", "sh"][..]] {
            let dir = tempfile::tempdir().expect("temp dir");
            let line = supervised_command_line(
                &dir.path().join("command.pid").to_string_lossy(),
                &dir.path().join("run.lock").to_string_lossy(),
                5,
                std::process::id(),
                "$PPID",
                "echo started && exec cat",
            );
            let mut child = std::process::Command::new(shell[0])
                .args(&shell[1..])
                .args(["-c", &line])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {shell:?} (busybox-static): {e}"));
            let stdout = child.stdout.take().expect("piped stdout");
            let pipe = fs_err::read_link(format!("/proc/self/fd/{}", stdout.as_raw_fd()))
                .expect("a pipe")
                .to_string_lossy()
                .into_owned();
            let mut stdout = std::io::BufReader::new(stdout);
            let mut started = String::new();
            stdout.read_line(&mut started).expect("the line starts");
            assert_eq!(started, "started\n", "{shell:?}");
            // The watchdog was forked before `started`; a process that has
            // not applied its redirections yet gets a moment.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut held_by = holders(&pipe);
            while held_by != ["cat"] && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
                held_by = holders(&pipe);
            }
            drop(child.stdin.take());
            assert!(child.wait().expect("the line ends").success(), "{shell:?}");
            assert_eq!(held_by, ["cat"], "{shell:?}: {line}");
        }
    }

    /// Runs `line` with `sh -c` and `stdin`, returning its status and output.
    fn sh(line: &str, stdin: &[u8]) -> (i32, String) {
        use std::io::Write as _;
        let mut child = std::process::Command::new("sh")
            .args(["-c", line])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        // A line that fails early (its `cd`) never reads its stdin: a broken
        // pipe here is part of what is tested, not a failure.
        let _ = child.stdin.take().expect("piped stdin").write_all(stdin);
        let output = child.wait_with_output().expect("sh ends");
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    #[test]
    fn files_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("my record.json");
        let shown = path.to_str().expect("utf-8 path");
        let (status, output) = sh(&write_file_line(shown, 0o644), b"{\"id\": 1}\n");
        assert_eq!((status, output.as_str()), (0, ""));
        assert_eq!(
            fs_err::read_to_string(&path).expect("written"),
            "{\"id\": 1}\n"
        );
        // A directory that cannot be written: the old file stays, no temp file.
        let missing = dir.path().join("nowhere/record.json");
        let (status, output) = sh(
            &write_file_line(missing.to_str().expect("utf-8"), 0o644),
            b"x",
        );
        assert_ne!(status, 0, "{output}");
        let names: Vec<_> = fs_err::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["my record.json"]);
    }

    #[test]
    fn the_lock_holder_holds_the_lock_until_its_stdin_ends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = dir.path().join("deploy.lock");
        let lock = lock.to_str().expect("utf-8 path");
        // Nothing on stdin: locked, then end of file frees it.
        let (status, output) = sh(&lock_holder_line(lock, 0, 30, "t0ken"), b"");
        assert_eq!(status, 0, "{output}");
        assert!(output.starts_with("slipway-lock: locked "), "{output}");
        let (_, output) = sh(&lock_probe_line(lock), b"");
        assert_eq!(output, "slipway-lock: free\n");
    }

    #[test]
    fn the_lock_holder_runs_steps_that_carry_its_token_and_stops_at_anything_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = dir.path().join("deploy.lock");
        let lock = lock.to_str().expect("utf-8 path");
        // Heartbeats, a step that reads its three bytes exactly, a step that
        // fails, then a line without the token: the holder stops there, and
        // runs nothing more.
        let stdin = b"krt0ken n1 printf '<%s>' \"$(dd bs=1 count=3 2>/dev/null)\"\nabckkrt0ken n2 exit 7\nrt0kenX n3 echo never\nrt0ken n4 echo after\n";
        let (status, output) = sh(&lock_holder_line(lock, 0, 30, "t0ken"), stdin);
        assert_eq!(status, 0, "{output}");
        let rest = output
            .strip_prefix("slipway-lock: locked ")
            .expect("locked first");
        let (_, rest) = rest.split_once('\n').expect("a line");
        assert_eq!(
            rest, "<abc>\nslipway-done: n1 0\n\nslipway-done: n2 7\n",
            "{output}"
        );
        // `dd` on this machine (GNU coreutils) stops at a byte count.
        assert!(output.contains(" exact\n"), "{output}");
    }

    #[test]
    fn the_lock_holder_outlives_a_failing_step_under_set_e_and_frees_the_lock_on_a_short_read() {
        use std::io::Write as _;
        // dash reads with `timeout` and `dd`, bash with its own `read -t`.
        for shell in ["dash", "bash"] {
            let dir = tempfile::tempdir().expect("temp dir");
            let lock = dir.path().join("deploy.lock");
            let lock = lock.to_str().expect("utf-8 path");
            // An rc file's `set -e`, a step that fails, then a step whose bytes
            // stop coming (the stream stays open, silent): the holder times its
            // read out after the heartbeat timeout (1 s here) and exits.
            let line = format!("set -e; {}", lock_holder_line(lock, 0, 1, "t0ken"));
            let mut child = std::process::Command::new(shell)
                .args(["-c", &line])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("sh runs");
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
            .write_all(b"rt0ken n1 false\nrt0ken n2 a=$(timeout $slipway_w dd bs=1 count=5 2>/dev/null && echo x) || exit 88\nab")
            .expect("written");
            let started = std::time::Instant::now();
            let mut stdout = child.stdout.take().expect("piped stdout");
            let mut output = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut output).expect("read");
            let status = child.wait().expect("ends");
            assert!(status.success(), "{shell}: {output}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{shell}: {:?}",
                started.elapsed()
            );
            assert!(
                output.ends_with("\nslipway-done: n1 1\n\nslipway-done: n2 88\n"),
                "{output}"
            );
            let (_, output) = sh(&lock_probe_line(lock), b"");
            assert_eq!(output, "slipway-lock: free\n");
            drop(stdin);
        }
    }

    /// What the lock holder of `lock`, run by `shell` (token `t0ken`),
    /// prints given `stdin`.
    fn holder_in(shell: &[&str], lock: &std::path::Path, stdin: &[u8]) -> String {
        use std::io::Write as _;
        let holder = lock_holder_line(&lock.to_string_lossy(), 0, 30, "t0ken");
        let mut child = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .args(["-c", &holder])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the shell runs");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin)
            .expect("written");
        let output = child.wait_with_output().expect("ends");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn the_lock_holder_hands_a_line_exactly_its_bytes_in_every_shell() {
        // The holder's login shell may be bash, dash or BusyBox ash: in
        // each, the line gets exactly its bytes through the FIFO (a
        // background command of dash or ash reads /dev/null unless told),
        // and the holder's next byte is the next step's.
        for shell in [&["bash"][..], &["dash"][..], &["busybox", "sh"][..]] {
            let dir = tempfile::tempdir().expect("temp dir");
            let lock = dir.path().join("deploy.lock");
            let got = dir.path().join("got.txt");
            let payload = b"first line\nthe rest\0with a NUL\n";
            let line = format!(
                "IFS= read -r h && printf 'head=%s\\n' \"$h\" && cat > {}",
                shell_quote(&got.to_string_lossy())
            );
            let step = holder_line_step(
                &dir.path().to_string_lossy(),
                &line,
                payload.len() as u64,
                60,
                "s1",
                "d1",
            );
            let mut stdin = format!("rt0ken s1 {step}\n").into_bytes();
            stdin.extend_from_slice(payload);
            stdin.extend_from_slice(b"krt0ken s2 sleep 1; echo after\n");
            let text = holder_in(shell, &lock, &stdin);
            assert!(text.contains("locked "), "{shell:?}: {text}");
            assert!(text.contains("head=first line\n"), "{shell:?}: {text}");
            assert!(text.contains("\nslipway-done: s1 0\n"), "{shell:?}: {text}");
            assert!(text.contains("\nslipway-done: d1 0\n"), "{shell:?}: {text}");
            assert!(
                text.ends_with("after\n\nslipway-done: s2 0\n"),
                "{shell:?}: {text}"
            );
            assert_eq!(
                fs_err::read(&got).expect("the line wrote it"),
                b"the rest\0with a NUL\n",
                "{shell:?}"
            );
            // The FIFO is gone with the step.
            let mut left: Vec<_> = fs_err::read_dir(dir.path())
                .expect("listed")
                .map(|e| e.expect("entry").file_name())
                .collect();
            left.sort();
            assert_eq!(left, ["deploy.lock", "got.txt"], "{shell:?}");
        }
    }

    #[test]
    fn a_line_without_bytes_reads_nothing_of_the_holders_stdin_in_every_shell() {
        // No FIFO for a line that gets no bytes: it reads /dev/null, never
        // the holder's next step, and ends with its status.
        for shell in [&["bash"][..], &["dash"][..], &["busybox", "sh"][..]] {
            let dir = tempfile::tempdir().expect("temp dir");
            let lock = dir.path().join("deploy.lock");
            let step = holder_line_step(
                &dir.path().to_string_lossy(),
                "printf 'read=[%s]\\n' \"$(cat)\"; exit 3",
                0,
                60,
                "s1",
                "d1",
            );
            let stdin = format!("rt0ken s1 {step}\nkrt0ken s2 sleep 1; echo after\n");
            let text = holder_in(shell, &lock, stdin.as_bytes());
            assert!(text.contains("\nslipway-done: s1 0\n"), "{shell:?}: {text}");
            assert!(text.contains("read=[]\n"), "{shell:?}: {text}");
            assert!(text.contains("\nslipway-done: d1 3\n"), "{shell:?}: {text}");
            assert!(
                text.ends_with("after\n\nslipway-done: s2 0\n"),
                "{shell:?}: {text}"
            );
            let left: Vec<_> = fs_err::read_dir(dir.path())
                .expect("listed")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(left, ["deploy.lock"], "{shell:?}");
        }
    }

    #[test]
    fn a_large_stream_is_unpacked_in_large_records_by_gnu_tar() {
        assert_eq!(
            unpack_line("/srv", &["big".to_owned()], LARGE_STREAM, "n0nce"),
            "cd /srv && { rm -rf .slipway/staging && mkdir .slipway/staging && case $(tar --version 2>/dev/null) in *GNU*) tar -x -p -o -b 2048 -B -f - -C .slipway/staging;; *) tar -x -p -o -f - -C .slipway/staging;; esac && [ -f .slipway/staging/.slipway-end ] && { sync -- .slipway/staging/big 2>/dev/null || sync; } || { rm -rf .slipway/staging; echo 'slipway-upload: failed n0nce' >&2; exit 85; }; } && "
        );
        assert_eq!(unpack_line("/srv", &[], LARGE_STREAM, "n0nce"), "");
    }

    #[test]
    fn each_nonce_is_16_hex_digits_and_new() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert_eq!(n.len(), 16, "{n}");
            assert!(n.bytes().all(|c| c.is_ascii_hexdigit()), "{n}");
        }
    }

    #[test]
    fn every_word_of_the_remote_command_is_quoted() {
        check_line(
            &[],
            &[],
            "./deploy.sh",
            "cd '/srv/my app' && exec env sh -c ./deploy.sh",
        );
        check_line(
            &["deploy.env", "it's here/x"],
            &[
                ("APP_IMAGE", "$(touch /tmp/pwned)"),
                ("SLIPWAY_RELEASE", "3"),
            ],
            "./deploy.sh && echo 'done'",
            "cd '/srv/my app' && { rm -rf .slipway/staging && mkdir .slipway/staging && tar -x -p -o -f - -C .slipway/staging && [ -f .slipway/staging/.slipway-end ] && { sync -- .slipway/staging/deploy.env '.slipway/staging/it'\\''s here/x' 2>/dev/null || sync; } || { rm -rf .slipway/staging; echo 'slipway-upload: failed n0nce' >&2; exit 85; }; } && cd '/srv/my app' && mkdir -p -- 'it'\\''s here' && mv -f -- .slipway/staging/deploy.env ./ && mv -f -- '.slipway/staging/it'\\''s here/x' 'it'\\''s here'/ && rm -rf .slipway/staging && exec env 'APP_IMAGE=$(touch /tmp/pwned)' SLIPWAY_RELEASE=3 sh -c './deploy.sh && echo '\\''done'\\'''",
        );
    }

    #[track_caller]
    fn check_ready(url: &str, expected: Result<(&str, u16, Option<&str>), &str>) {
        let actual = ready_target(url)
            .map(|t| (t.host, t.port, t.http_path))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(h, p, path)| (h.to_owned(), p, path.map(str::to_owned)))
            .map_err(|why| format!("ready URL `{}` {why}; expected `http://host[:port]/path` or `tcp://host:port` as seen from the host, e.g. `http://127.0.0.1:8080/api/ready`", slipway_core::secret::redact_url(url)));
        assert_eq!(actual, expected);
    }

    #[test]
    fn ready_urls() {
        check_ready(
            "http://127.0.0.1:8080/api/ready",
            Ok(("127.0.0.1", 8080, Some("/api/ready"))),
        );
        check_ready("http://app.internal", Ok(("app.internal", 80, Some("/"))));
        check_ready("http://[::1]:81?x=1", Ok(("::1", 81, Some("/?x=1"))));
        check_ready("tcp://127.0.0.1:5432", Ok(("127.0.0.1", 5432, None)));
        check_ready("tcp://db", Err("has no port"));
        check_ready("http://u:p@h/", Err("holds credentials"));
        check_ready("http://bob:Hunter2@h/", Err("holds credentials"));
        check_ready("ftp://h/?token=T0k3n", Err("has an unsupported scheme"));
        check_ready(
            "https://h/",
            Err(
                "is HTTPS, which the probe through the SSH connection does not speak; use the app's plain HTTP port on the host",
            ),
        );
    }

    #[track_caller]
    fn check_remote(path: &str, expected: Result<(), &str>) {
        let actual = check_remote_path_of("prod", path).map_err(|e| e.to_string());
        match expected {
            Ok(()) => assert_eq!(actual, Ok(()), "{path}"),
            Err(why) => assert!(
                actual.as_ref().is_err_and(|e| e.contains(why)),
                "{path}: {actual:?}"
            ),
        }
    }

    #[test]
    fn dangerous_remote_paths_are_refused() {
        check_remote("/srv/shop", Ok(()));
        check_remote("/opt/shop/", Ok(()));
        check_remote("/home/deploy/shop", Ok(()));
        check_remote("/usr/local/shop/current", Ok(()));
        check_remote("/", Err("is the root directory"));
        check_remote("//", Err("is the root directory"));
        check_remote("", Err("is not an absolute path"));
        check_remote("~", Err("is not an absolute path"));
        check_remote("/etc", Err("is a top-level directory"));
        check_remote("/srv", Err("is a top-level directory"));
        check_remote("/root/", Err("is a top-level directory"));
        check_remote("/etc/nginx", Err("is a system directory"));
        check_remote("/usr/bin", Err("is a system directory"));
        check_remote("/proc/self", Err("is a system directory"));
        check_remote("/home/deploy", Err("is a home or system directory itself"));
        check_remote("/var/lib", Err("is a home or system directory itself"));
        check_remote("/srv/app/../../etc", Err("holds `.` or `..`"));
    }

    #[test]
    fn encrypted_keys_are_recognised() {
        let openssh = b"openssh-key-v1\0".to_vec();
        let body = |cipher: &[u8]| {
            use base64::Engine as _;
            let mut bytes = openssh.clone();
            bytes.extend_from_slice(&u32::try_from(cipher.len()).unwrap_or(0).to_be_bytes());
            bytes.extend_from_slice(cipher);
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        };
        assert!(!is_encrypted_key(&body(b"none")));
        assert!(is_encrypted_key(&body(b"aes256-ctr")));
        assert!(is_encrypted_key(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
        assert!(is_encrypted_key("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(!is_encrypted_key("-----BEGIN PRIVATE KEY-----\n"));
    }

    #[track_caller]
    fn check_fingerprint(value: &str, is_valid: bool) {
        assert_eq!(parse_fingerprint(value).is_ok(), is_valid, "{value}");
    }

    #[test]
    fn fingerprints() {
        check_fingerprint("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", true);
        check_fingerprint("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", false);
        check_fingerprint("SHA256:short", false);
        check_fingerprint("MD5:aa:bb", false);
    }
}
