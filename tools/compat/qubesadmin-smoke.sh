#!/usr/bin/env bash
# qubesadmin-smoke.sh: run Qubes' own admin tools (the qubesadmin package of qubes-core-admin-client,
# unmodified) against our qubesd and print PASS/FAIL per check. See tools/compat/README.md.
#
#   QUBESADMIN_SRC=/path/to/qubes-core-admin-client tools/compat/qubesadmin-smoke.sh
#
# Environment:
#   QUBESADMIN_SRC   checkout of github.com/QubesOS/qubes-core-admin-client (required)
#   QUBESD_SOCKET    socket of a running qubesd (default: $QUBESD_STATE_DIR/qubesd.sock)
#   QUBESD_STATE_DIR default /tmp/compat-state
#   QUBESD_DLL       if set (path to qubesd.dll), start a private qubesd on a fresh temporary state dir,
#                    run against it and stop it at the end (the default layout is created on first start)
#   PYTHON           interpreter (default /usr/bin/python3 when present: Debian's, else python3)
#   SMOKE_ONLY       extended regex: run only the groups whose name matches (ls, create, prefs, globals,
#                    power, shutdown-all, tags, features, service, firewall, device, check, remove)
#   SMOKE_VERBOSE=1  print stdout/stderr of every failing invocation (default: first lines of stderr)
#   SMOKE_LOG_DIR    keep every invocation's stdout/stderr/Admin-API trace there (default: a temp dir,
#                    printed at the end and kept when something failed)
#
# The script assumes the default layout (dom0, debian-13, sys-net, sys-firewall, sys-usb, default-dvm,
# work, personal, untrusted, vault). It creates qubes named smk-* and removes them again (also at the
# start, left over from an interrupted run). It shuts every qube down in the shutdown-all group.
# Exit status: 0 when every check passed, 1 otherwise, 2 on a setup problem.

set -u
here=$(cd "$(dirname "$0")" && pwd)
runner="$here/qa-run.py"

: "${QUBESADMIN_SRC:?set QUBESADMIN_SRC to a checkout of qubes-core-admin-client}"
if [ ! -f "$QUBESADMIN_SRC/qubesadmin/app.py" ]; then
    echo "qubesadmin-smoke: $QUBESADMIN_SRC is not a qubes-core-admin-client checkout" >&2; exit 2
fi
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
QUBESD_STATE_DIR=${QUBESD_STATE_DIR:-/tmp/compat-state}
SMOKE_ONLY=${SMOKE_ONLY:-.}
SMOKE_VERBOSE=${SMOKE_VERBOSE:-0}
logdir=${SMOKE_LOG_DIR:-$(mktemp -d /tmp/qubesadmin-smoke.XXXXXX)}
mkdir -p "$logdir"

daemon_pid=
private_state=
cleanup_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    if [ -n "$private_state" ]; then rm -rf -- "$private_state"; fi
}
trap cleanup_daemon EXIT

if [ -n "${QUBESD_DLL:-}" ]; then
    QUBESD_STATE_DIR=$(mktemp -d /tmp/qubesadmin-smoke-state.XXXXXX)
    private_state=$QUBESD_STATE_DIR
    dotnet "$QUBESD_DLL" --state-dir "$QUBESD_STATE_DIR" >"$logdir/qubesd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 120); do
        grep -q 'qubesd: ready' "$logdir/qubesd.log" 2>/dev/null && break
        kill -0 "$daemon_pid" 2>/dev/null || { echo "qubesadmin-smoke: qubesd exited, see $logdir/qubesd.log" >&2; exit 2; }
        sleep 0.5
    done
    grep -q 'qubesd: ready' "$logdir/qubesd.log" || { echo "qubesadmin-smoke: qubesd not ready after 60 s" >&2; exit 2; }
fi
QUBESD_SOCKET=${QUBESD_SOCKET:-$QUBESD_STATE_DIR/qubesd.sock}
if [ ! -S "$QUBESD_SOCKET" ]; then
    echo "qubesadmin-smoke: no qubesd socket at $QUBESD_SOCKET" >&2; exit 2
fi
export QUBESADMIN_SRC QUBESD_SOCKET

pass=0; fail=0; n=0
group=""
out=""; err=""; rc=0; cmdline=""; case_failed=0; case_label=""

# qa TOOL ARGS...: run one tool; sets $out, $err, $rc (and keeps them under $logdir/NNN.*)
qa() {
    n=$((n + 1))
    local base
    base=$(printf '%s/%03d' "$logdir" "$n")
    cmdline="$*"
    printf '%s\n' "$cmdline" >"$base.cmd"
    QA_TRACE="$base.trace" timeout 120 "$PYTHON" "$runner" "$@" >"$base.out" 2>"$base.err" </dev/null
    rc=$?
    out=$(cat "$base.out"); err=$(cat "$base.err")
    case_failed=0; case_label="$cmdline"; checks=""
}

_fail() { case_failed=1; checks="$checks; $1"; }
# checks on the last invocation
rc_is()      { [ "$rc" -eq "$1" ] || _fail "exit $rc, expected $1"; }
out_has()    { grep -Eq -- "$1" <<<"$out" || _fail "stdout lacks /$1/"; }
out_lacks()  { ! grep -Eq -- "$1" <<<"$out" || _fail "stdout has /$1/"; }
out_is()     { [ "$out" = "$1" ] || _fail "stdout is '$(head -c 200 <<<"$out")', expected '$1'"; }
err_has()    { grep -Eq -- "$1" <<<"$err" || _fail "stderr lacks /$1/"; }
no_trace()   { ! grep -q 'Traceback (most recent call last)' <<<"$err" || _fail "Python traceback: $(tail -n 1 <<<"$err")"; }
# report the last invocation (optionally with a label other than the command line)
verdict() {
    local label=${1:-$case_label}
    if [ "$case_failed" -eq 0 ]; then
        pass=$((pass + 1)); printf 'PASS  %-70s\n' "$label"
    else
        fail=$((fail + 1)); printf 'FAIL  %-70s [%03d]%s\n' "$label" "$n" "$checks"
        if [ "$SMOKE_VERBOSE" = 1 ]; then
            sed 's/^/      out| /' <<<"$out" | head -n 40
            sed 's/^/      err| /' <<<"$err" | tail -n 15
        else
            grep -v '^please wait' <<<"$err" | tail -n 2 | sed 's/^/      err| /'
        fi
    fi
}
# ok TOOL ARGS...: the common case, exit 0 and no traceback
ok() { qa "$@"; rc_is 0; no_trace; verdict; }
in_group() { group=$1; grep -Eq -- "$SMOKE_ONLY" <<<"$1"; }

# --------------------------------------------------------------------------------------------- setup
for vm in smk-app smk-app2 smk-sa smk-tpl smk-disp; do
    qa qvm-check --quiet "$vm"
    [ "$rc" -eq 0 ] && { qa qvm-kill "$vm"; qa qvm-remove -f "$vm"; }
done
# the autostart service qubes, as after a fresh start of qubesd (a previous run shuts everything down)
ok qvm-start --skip-if-running sys-net sys-firewall sys-usb

# ---------------------------------------------------------------------------------------------- qvm-ls
if in_group ls; then
    qa qvm-ls; rc_is 0; no_trace
    out_has '^NAME +STATE +CLASS +LABEL +TEMPLATE +NETVM$'
    out_has '^dom0 +Running +AdminVM +black +- +-$'
    out_has '^work +(Halted|Running) +AppVM +blue +debian-13 +sys-firewall$'
    out_has '^debian-13 +[A-Za-z]+ +TemplateVM +black +- +-$'
    verdict
    qa qvm-ls -n; rc_is 0; no_trace; out_has '^NAME +STATE +NETVM +IP +IPBACK +GATEWAY$'
    out_has '^work +[A-Za-z]+ +sys-firewall +10\.137\.[0-9]+\.[0-9]+ '; verdict
    qa qvm-ls -k; rc_is 0; no_trace; out_has '^NAME +STATE +CLASS +TEMPLATE +KERNEL +KERNELOPTS$'; out_has '^work '; verdict
    qa qvm-ls -d; rc_is 0; no_trace; out_has '^NAME +STATE +DISK +PRIV-CURR +PRIV-MAX +PRIV-USED +ROOT-CURR +ROOT-MAX +ROOT-USED$'
    out_has '^work '; verdict
    qa qvm-ls --format full; rc_is 0; no_trace; out_has '^NAME +STATE +CLASS +LABEL +QID +XID +UUID$'
    out_has '^dom0 +Running +AdminVM +black +0 +0 +00000000-0000-0000-0000-000000000000$'
    out_has '^work +[A-Za-z]+ +AppVM +blue +[0-9]+ +-?[0-9]+ +[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'; verdict
    qa qvm-ls --format prefs; rc_is 0; no_trace; out_has '^NAME +LABEL +TEMPLATE +NETVM +VCPUS +INITIALMEM +MAXMEM +VIRT-MODE$'
    out_has '^work +blue +debian-13 +sys-firewall +[0-9]+ '; verdict
    qa qvm-ls --format network; rc_is 0; no_trace; out_has '^NAME +STATE +NETVM +IP +IPBACK +GATEWAY$'; verdict
    qa qvm-ls --format kernel; rc_is 0; no_trace; out_has '^NAME +STATE +CLASS +TEMPLATE +KERNEL +KERNELOPTS$'; verdict
    qa qvm-ls --format disk; rc_is 0; no_trace; out_has '^NAME +STATE +DISK '; verdict
    qa qvm-ls --fields NAME,STATE,CLASS,FLAGS,MEMORY,QID,XID,VCPUS,MAXMEM,NETVM
    rc_is 0; no_trace; out_has '^NAME +STATE +CLASS +FLAGS +MEMORY +QID +XID +VCPUS +MAXMEM +NETVM$'
    out_has '^dom0 +Running +AdminVM +0r[-U][-N][-R][-i][-D][-A] +[0-9]+ +0 +0 '
    out_has '^sys-net +Running +AppVM +[aA]r[-U]N[-R][-i][-D]A +[0-9]+ '
    out_has '^debian-13 +Halted +TemplateVM +[tT]-U'; verdict
    qa qvm-ls --raw-data; rc_is 0; no_trace
    out_has '^dom0\|Running\|AdminVM\|black\|-\|-$'; out_has '^work\|[A-Za-z]+\|AppVM\|blue\|debian-13\|sys-firewall$'; verdict
    qa qvm-ls --raw-data --fields name,state,flags,memory,uuid; rc_is 0; no_trace
    out_has '^sys-firewall\|Running\|[aA]r-N---A\|[0-9]+\|[0-9a-f-]{36}$'; verdict
    qa qvm-ls --raw-list; rc_is 0; no_trace; out_has '^dom0$'; out_has '^work$'; out_has '^vault$'; verdict
    qa qvm-ls --tree; rc_is 0; no_trace; out_has '^sys-net '; out_has '^└─sys-firewall '; out_has '^  └─work '; verdict
    qa qvm-ls --running --raw-list; rc_is 0; no_trace; out_has '^dom0$'; out_has '^sys-net$'; out_lacks '^vault$'; verdict
    qa qvm-ls --halted --raw-list; rc_is 0; no_trace; out_has '^vault$'; out_lacks '^dom0$'; verdict
    qa qvm-ls --paused --raw-list; rc_is 0; no_trace; verdict
    qa qvm-ls --class TemplateVM --raw-list; rc_is 0; no_trace; out_is 'debian-13'; verdict
    qa qvm-ls --label yellow --raw-list; rc_is 0; no_trace; out_is 'personal'; verdict
    qa qvm-ls --exclude dom0 --all --raw-list; rc_is 0; no_trace; out_lacks '^dom0$'; out_has '^work$'; verdict
fi

# ----------------------------------------------------------------------------------------- qvm-create
if in_group create; then
    qa qvm-create --class AppVM --template debian-13 --label green smk-app; rc_is 0; no_trace; verdict
    qa qvm-ls --raw-data --fields name,class,label,template,netvm smk-app; rc_is 0
    out_is 'smk-app|AppVM|green|debian-13|sys-firewall'; verdict "qvm-create --class AppVM: the new qube as qvm-ls shows it"
    qa qvm-create -l red smk-app2; rc_is 0; no_trace; verdict
    qa qvm-prefs smk-app2 template; rc_is 0; out_is 'debian-13'; verdict "qvm-create without --template: default_template"
    qa qvm-create --class StandaloneVM --label purple --prop memory=600 --prop vcpus=1 smk-sa; rc_is 0; no_trace; verdict
    qa qvm-prefs smk-sa memory; rc_is 0; out_is '600'; verdict "qvm-create --prop memory=600: applied"
    qa qvm-create --class TemplateVM --label black smk-tpl; rc_is 0; no_trace; verdict
    qa qvm-create --class DispVM --template default-dvm --label red smk-disp; rc_is 0; no_trace; verdict
    # upstream gives every DispVM a dispid at creation (qubes/vm/dispvm.py) and addresses it in 10.138/16
    qa qvm-prefs smk-disp dispid; rc_is 0; out_has '^[0-9]+$'; verdict "qvm-create --class DispVM: dispid set"
    qa qvm-prefs smk-disp ip; rc_is 0; out_has '^10\.138\.[0-9]+\.[0-9]+$'; verdict "qvm-create --class DispVM: ip in 10.138/16"
    qa qvm-create --label green smk-app; rc_is 1; no_trace; verdict "qvm-create of an existing name: exit 1"
    qa qvm-create --label nosuchlabel smk-bad; rc_is 2; no_trace; err_has 'no such label'; verdict
    qa qvm-create --help-classes; rc_is 0; no_trace; out_has '^AppVM$'; out_has '^DispVM$'; out_has '^TemplateVM$'; verdict
fi

# -------------------------------------------------------------------------------------------- qvm-prefs
if in_group prefs; then
    qa qvm-prefs work; rc_is 0; no_trace
    out_has '^label +- +blue$'; out_has '^netvm +D +sys-firewall$'; out_has '^template +- +debian-13$'
    out_has '^uuid +- +[0-9a-f-]{36}$'; verdict
    qa qvm-prefs dom0; rc_is 0; no_trace; out_has '^klass +- +AdminVM$'; verdict
    qa qvm-prefs work netvm; rc_is 0; out_is 'sys-firewall'; verdict
    # a network provider without a netvm is networked: ip = visible_ip = its own 10.137.x.y (its clients' gateway)
    qa qvm-prefs sys-net ip; rc_is 0; out_has '^10\.137\.[0-9]+\.[0-9]+$'; verdict "qvm-prefs sys-net ip: its own address"
    qa qvm-prefs sys-net dns; rc_is 0; out_is '10.139.1.1 10.139.1.2'; verdict "qvm-prefs sys-net dns: the virtual DNS pair"
    qa qvm-prefs work label; rc_is 0; out_is 'blue'; verdict
    ok qvm-prefs work memory 512
    qa qvm-prefs work memory; rc_is 0; out_is '512'; verdict "qvm-prefs set then get: 512"
    ok qvm-prefs -D work memory
    qa qvm-prefs work memory; rc_is 0; out_is '400'; verdict "qvm-prefs -D then get: the default"
    ok qvm-prefs work netvm ''
    qa qvm-prefs work netvm; rc_is 0; out_is ''; verdict "qvm-prefs netvm '': no netvm"
    ok qvm-prefs --default work netvm
    qa qvm-prefs work netvm; rc_is 0; out_is 'sys-firewall'; verdict "qvm-prefs --default netvm: default_netvm again"
    qa qvm-prefs work nosuchprop; rc_is 2; no_trace; err_has 'no such property'; verdict
    qa qvm-prefs work memory notanumber; rc_is 1; no_trace; verdict "qvm-prefs work memory notanumber: exit 1"
    qa qvm-prefs work netvm nosuchqube; rc_is 1; no_trace; verdict "qvm-prefs work netvm nosuchqube: exit 1"
    qa qvm-prefs --help-properties work; rc_is 0; no_trace; out_has 'netvm'; verdict
fi

# ----------------------------------------------------------------------------------------- qubes-prefs
if in_group globals; then
    qa qubes-prefs; rc_is 0; no_trace
    out_has '^default_netvm +- +sys-firewall$'; out_has '^default_template +- +debian-13$'
    out_has '^default_dispvm +- +default-dvm$'; out_has '^updatevm +- +sys-firewall$'; out_has '^clockvm +- +sys-net$'; verdict
    qa qubes-prefs default_template; rc_is 0; out_is 'debian-13'; verdict
    ok qubes-prefs default_qrexec_timeout 90
    qa qubes-prefs default_qrexec_timeout; rc_is 0; out_is '90'; verdict "qubes-prefs set then get: 90"
    ok qubes-prefs -D default_qrexec_timeout
    qa qubes-prefs default_qrexec_timeout; rc_is 0; out_is '60'; verdict "qubes-prefs -D then get: 60"
    qa qubes-prefs nosuchprop; rc_is 2; no_trace; verdict "qubes-prefs nosuchprop: exit 2"
fi

# ----------------------------------------------------------------------- qvm-start/pause/shutdown/kill
if in_group power; then
    ok qvm-start work
    qa qvm-check --running work; rc_is 0; verdict
    qa qvm-start work; rc_is 1; no_trace; err_has 'already running'; verdict "qvm-start work (running): exit 1, already running"
    ok qvm-start --skip-if-running work
    ok qvm-pause work
    qa qvm-check --paused work; rc_is 0; verdict
    qa qvm-ls --raw-data --fields name,state,flags work; rc_is 0; out_is 'work|Paused|ap------'; verdict "qvm-ls on a paused qube"
    ok qvm-unpause work
    qa qvm-check --paused work; rc_is 1; verdict "qvm-check --paused work (unpaused): exit 1"
    qa qvm-shutdown --wait work; rc_is 0; no_trace; verdict
    qa qvm-check --running work; rc_is 1; verdict "qvm-check --running work after shutdown --wait: exit 1"
    ok qvm-start work
    ok qvm-kill work
    qa qvm-check --running work; rc_is 1; verdict "qvm-check --running work after kill: exit 1"
    ok qvm-start work
    qa qvm-shutdown sys-firewall; rc_is 1; no_trace; err_has 'There are other VMs connected to this VM: work$'
    verdict "qvm-shutdown sys-firewall (work runs): exit 1, 'connected ... work'"
    ok qvm-shutdown --force --wait work
    qa qvm-pause vault; rc_is 1; no_trace; verdict "qvm-pause vault (halted): exit 1"
    qa qvm-kill vault; rc_is 0; no_trace; verdict "qvm-kill vault (halted): exit 0 (client ignores NotStarted)"
    ok qvm-start personal untrusted
    qa qvm-ls --running --raw-list; rc_is 0; out_has '^personal$'; out_has '^untrusted$'; out_has '^sys-firewall$'; verdict "qvm-start of two qubes (and their netvm)"
    ok qvm-shutdown --wait personal untrusted
    # no client of sys-firewall runs now (dom0 has no netvm and is nobody's client)
    qa qvm-shutdown --wait sys-firewall; rc_is 0; no_trace; verdict "qvm-shutdown --wait sys-firewall (no client running): exit 0"
    qa qvm-check --running sys-firewall; rc_is 1; verdict "qvm-check --running sys-firewall after its shutdown: exit 1"
    ok qvm-start --skip-if-running sys-firewall
fi

# ------------------------------------------------------------------------------------------- qvm-tags
if in_group tags; then
    ok qvm-tags work add smk-t1 smk-t2
    qa qvm-tags work list; rc_is 0; out_has '^smk-t1$'; out_has '^smk-t2$'; verdict
    qa qvm-tags work list smk-t1; rc_is 0; out_is 'smk-t1'; verdict
    qa qvm-ls --tags smk-t2 --raw-list; rc_is 0; out_is 'work'; verdict
    ok qvm-tags work del smk-t1
    ok qvm-tags work del smk-t2
    qa qvm-tags work list smk-t1; rc_is 1; out_is ''; verdict "qvm-tags work list smk-t1 (removed): exit 1"
    qa qvm-tags work; rc_is 0; out_lacks 'smk-t'; verdict
fi

# --------------------------------------------------------------------------------------- qvm-features
if in_group features; then
    ok qvm-features work smk-feature value1
    qa qvm-features work smk-feature; rc_is 0; out_is 'value1'; verdict
    qa qvm-features work; rc_is 0; out_has '^smk-feature +value1$'; verdict
    ok qvm-features --unset work smk-feature
    qa qvm-features work smk-feature; rc_is 1; no_trace; verdict "qvm-features get of an unset feature: exit 1"
    qa qvm-features sys-net; rc_is 0; out_has '^servicevm +1$'; verdict
fi

# ---------------------------------------------------------------------------------------- qvm-service
if in_group service; then
    ok qvm-service work cups on
    qa qvm-service work; rc_is 0; out_has '^cups +on$'; verdict
    qa qvm-service work cups; rc_is 0; out_is 'on'; verdict
    ok qvm-service --disable work cups
    qa qvm-service work -l; rc_is 0; out_has '^cups +off$'; verdict
    ok qvm-service --unset work cups
    qa qvm-service work; rc_is 0; out_lacks 'cups'; verdict
fi

# --------------------------------------------------------------------------------------- qvm-firewall
if in_group firewall; then
    qa qvm-firewall work; rc_is 0; no_trace
    out_has '^NO +ACTION +HOST +PROTOCOL +PORT\(S\) +SPECIAL TARGET +ICMP TYPE +EXPIRE +COMMENT$'; out_has '^0 +accept '; verdict
    ok qvm-firewall work add drop dsthost=smk.example.com proto=tcp dstports=443
    ok qvm-firewall work add --before 0 accept dsthost=10.0.0.0/8 comment=smk-lan
    qa qvm-firewall work list; rc_is 0; no_trace
    out_has '^0 +accept +10\.0\.0\.0/8 '; out_has 'smk\.example\.com +tcp +443 '; verdict
    # --raw prints the client's own rendering of each rule (action proto dsthost dstports ... comment)
    qa qvm-firewall --raw work; rc_is 0; no_trace; out_has '^action=accept dst4=10\.0\.0\.0/8 comment=smk-lan$'
    out_has '^action=drop proto=tcp dsthost=smk\.example\.com dstports=443-443$'; verdict
    ok qvm-firewall work del --rule-no 0
    ok qvm-firewall work del drop dsthost=smk.example.com proto=tcp dstports=443
    qa qvm-firewall work; rc_is 0; out_lacks 'smk'; verdict
    ok qvm-firewall work --reload
    ok qvm-firewall work reset
    qa qvm-firewall --raw work; rc_is 0; out_is 'action=accept'; verdict
fi

# ----------------------------------------------------------------------------------------- qvm-device
if in_group device; then
    qa qvm-device --list-device-classes; rc_is 0; no_trace; out_has '^pci$'; out_has '^usb$'; out_has '^block$'; verdict
    # (no header: qvm-device prints BACKEND:DEVID ... only when stdout is a tty)
    qa qvm-pci; rc_is 0; no_trace; out_has '^dom0:00_14\.0 .*sys-usb'; out_has '^dom0:00_1f\.6 .*sys-net'; verdict
    qa qvm-device pci list; rc_is 0; no_trace; out_has '^dom0:00_1f\.6 '; verdict
    qa qvm-usb; rc_is 0; no_trace; out_has '^sys-usb:2-1 '; verdict
    # the description is built by the client from vendor=, product=, interfaces= (DeviceInfo.description)
    qa qvm-device usb list; rc_is 0; out_lacks 'unknown vendor|\?\*\*\*\*\*\*'; verdict "qvm-usb: description without 'unknown vendor'/'?******'"
    qa qvm-device pci list; rc_is 0; out_lacks 'unknown vendor|\?\*\*\*\*\*\*'; verdict "qvm-pci: description without 'unknown vendor'/'?******'"
    qa qvm-block; rc_is 0; no_trace; out_has '^sys-usb:sda '; verdict
    qa qvm-usb list work; rc_is 0; no_trace; verdict
    ok qvm-start work
    ok qvm-usb attach work sys-usb:2-1
    qa qvm-usb; rc_is 0; out_has '^sys-usb:2-1 .*work'; verdict "qvm-usb after attach: used by work"
    qa qvm-usb list work; rc_is 0; out_has '^sys-usb:2-1 '; verdict "qvm-usb list work after attach"
    ok qvm-usb detach work sys-usb:2-1
    qa qvm-usb; rc_is 0; out_lacks '^sys-usb:2-1 .*work'; verdict "qvm-usb after detach: free"
    ok qvm-block attach work sys-usb:sda
    ok qvm-block detach work sys-usb:sda
    ok qvm-shutdown --wait work
    ok qvm-usb assign work sys-usb:2-1
    qa qvm-usb list --assignments work; rc_is 0; out_has '^sys-usb:2-1 .*\*work \(auto-attach\)'; verdict "qvm-usb list -s work after assign"
    ok qvm-usb unassign work sys-usb:2-1
    ok qvm-pci assign --required vault dom0:00_14.0
    qa qvm-pci list --assignments vault; rc_is 0; out_has '^dom0:00_14\.0 .*\*vault \(required\)'; verdict "qvm-pci list -s vault after assign"
    ok qvm-pci unassign vault dom0:00_14.0
    qa qvm-pci list --assignments vault; rc_is 0; out_lacks 'vault'; verdict "qvm-pci list -s vault after unassign"
fi

# ------------------------------------------------------------------------------------------ qvm-check
if in_group check; then
    qa qvm-check work; rc_is 0; err_has 'work: exists'; verdict
    qa qvm-check smk-nosuchqube; rc_is 1; err_has 'non-existent'; verdict
    qa qvm-check --running dom0; rc_is 0; verdict
    qa qvm-check --running vault; rc_is 1; verdict
    qa qvm-check --template debian-13; rc_is 0; verdict
    qa qvm-check --template work; rc_is 1; verdict
    qa qvm-check --networked work; rc_is 0; verdict
    qa qvm-check --networked vault; rc_is 1; verdict
fi

# ------------------------------------------------------------------------------- qvm-shutdown --all
if in_group shutdown-all; then
    ok qvm-start work
    qa qvm-shutdown --all --wait; rc_is 0; no_trace; verdict
    qa qvm-ls --running --raw-list; rc_is 0; out_is 'dom0'; verdict "after qvm-shutdown --all --wait only dom0 runs"
    ok qvm-start sys-net sys-firewall sys-usb
fi

# ----------------------------------------------------------------------------------------- qvm-remove
if in_group remove; then
    for vm in smk-app smk-app2 smk-sa smk-tpl smk-disp; do
        qa qvm-check --quiet "$vm"; [ "$rc" -eq 0 ] || continue
        ok qvm-remove -f "$vm"
    done
    qa qvm-ls --raw-list; rc_is 0; out_lacks '^smk-'; verdict "qvm-ls after qvm-remove: no smk-* left"
    qa qvm-remove -f smk-nosuchqube; rc_is 2; no_trace; verdict "qvm-remove -f of a missing qube: exit 2"
    ok qvm-start work
    qa qvm-remove -f work; rc_is 1; no_trace; err_has 'not powered off'; verdict "qvm-remove -f work (running): exit 1"
    qa qvm-remove -f debian-13; rc_is 1; no_trace; err_has 'in use'; verdict "qvm-remove -f debian-13 (a template in use): exit 1"
    ok qvm-shutdown --wait work
fi

echo
echo "qubesadmin-smoke: $pass passed, $fail failed (client $(git -C "$QUBESADMIN_SRC" rev-parse --short HEAD 2>/dev/null || echo '?'), socket $QUBESD_SOCKET)"
echo "qubesadmin-smoke: per-invocation stdout/stderr/Admin-API traces in $logdir"
[ "$fail" -eq 0 ]
