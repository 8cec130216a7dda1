#!/usr/bin/env python3
"""Run one of Qubes' qubesadmin tools against a qubesd socket of our choosing.

Usage: QUBESADMIN_SRC=/path/to/qubes-core-admin-client QUBESD_SOCKET=/path/qubesd.sock \
           qa-run.py TOOL-NAME [ARGS...]          e.g. qa-run.py qvm-ls --running

What it changes in the unmodified client, at run time only:
  * qubesadmin.config.QUBESD_SOCKET  <- $QUBESD_SOCKET (the client has no env override);
  * qubesadmin.Qubes                 <- qubesadmin.app.QubesLocal (the client picks QubesLocal only
                                        when /etc/qubes-release exists, i.e. in dom0; otherwise
                                        QubesRemote, which goes through qrexec-client-vm);
  * importlib.metadata.metadata('qubesadmin') answers a stub when the package is not installed
    (QubesArgumentParser reads it for --version).
Optional: QA_TRACE=FILE appends one record per Admin API call (request header, payload, raw
response bytes, repr'ed) and per event-stream chunk.
"""
import importlib
import importlib.metadata
import os
import sys

TOOLS = {
    'qvm-ls': 'qvm_ls', 'qvm-create': 'qvm_create', 'qvm-prefs': 'qvm_prefs',
    'qubes-prefs': 'qubes_prefs', 'qvm-start': 'qvm_start', 'qvm-shutdown': 'qvm_shutdown',
    'qvm-kill': 'qvm_kill', 'qvm-pause': 'qvm_pause', 'qvm-unpause': 'qvm_unpause',
    'qvm-remove': 'qvm_remove', 'qvm-tags': 'qvm_tags', 'qvm-features': 'qvm_features',
    'qvm-service': 'qvm_service', 'qvm-firewall': 'qvm_firewall', 'qvm-device': 'qvm_device',
    'qvm-usb': 'qvm_device', 'qvm-pci': 'qvm_device', 'qvm-block': 'qvm_device',
    'qvm-mic': 'qvm_device', 'qvm-check': 'qvm_check', 'qvm-notes': 'qvm_notes',
    'qvm-clone': 'qvm_clone', 'qvm-volume': 'qvm_volume', 'qvm-pool': 'qvm_pool',
}

def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TOOLS:
        sys.stderr.write('usage: qa-run.py {%s} [ARGS...]\n' % ','.join(sorted(TOOLS)))
        return 2
    src = os.environ.get('QUBESADMIN_SRC')
    if not src:
        sys.stderr.write('qa-run.py: set QUBESADMIN_SRC to a qubes-core-admin-client checkout\n')
        return 2
    sock = os.environ.get('QUBESD_SOCKET', '/var/run/qubesd.sock')
    sys.path.insert(0, os.path.abspath(src))

    real_metadata = importlib.metadata.metadata
    def metadata(name):
        try:
            return real_metadata(name)
        except importlib.metadata.PackageNotFoundError:
            if name != 'qubesadmin':
                raise
            return {'summary': 'Qubes Admin API package', 'version': 'source',
                    'Author-email': 'n/a', 'license': 'LGPL-2.1-only'}
    importlib.metadata.metadata = metadata

    import qubesadmin
    import qubesadmin.app
    import qubesadmin.base
    import qubesadmin.config
    qubesadmin.config.QUBESD_SOCKET = sock
    qubesadmin.Qubes = qubesadmin.app.QubesLocal

    trace = os.environ.get('QA_TRACE')
    if trace:
        _install_trace(trace)

    tool = sys.argv[1]
    sys.argv = [tool] + sys.argv[2:]   # qvm-device derives the device class from argv[0]
    mod = importlib.import_module('qubesadmin.tools.' + TOOLS[tool])
    return mod.main()

def _install_trace(path):
    import qubesadmin.app
    import qubesadmin.base
    import qubesadmin.events
    out = open(path, 'a', buffering=1)
    real_call = qubesadmin.app.QubesLocal.qubesd_call
    def qubesd_call(self, dest, method, arg=None, payload=None, payload_stream=None):
        out.write('>>> %s+%s dom0 name %s  payload=%r\n' % (method, arg or '', dest, payload))
        try:
            return real_call(self, dest, method, arg, payload, payload_stream)
        except Exception as e:
            out.write('!!! %s: %s\n' % (type(e).__name__, e))
            raise
    qubesadmin.app.QubesLocal.qubesd_call = qubesd_call
    real_parse = qubesadmin.base.PropertyHolder._parse_qubesd_response
    def parse(response_data):
        out.write('<<< %r\n' % (response_data,))
        return real_parse(response_data)
    qubesadmin.base.PropertyHolder._parse_qubesd_response = staticmethod(parse)
    real_reader = qubesadmin.events.EventsDispatcher._get_events_reader
    async def get_reader(self, vm=None):
        reader, cleanup = await real_reader(self, vm)
        real_until = reader.readuntil
        async def readuntil(sep=b'\n'):
            data = await real_until(sep)
            out.write('<<< event-stream field %r\n' % (data,))
            return data
        reader.readuntil = readuntil
        out.write('>>> %s (events) dest=%s\n' % (self._api_method, vm.name if vm else 'dom0'))
        return reader, cleanup
    qubesadmin.events.EventsDispatcher._get_events_reader = get_reader

if __name__ == '__main__':
    sys.exit(main())
