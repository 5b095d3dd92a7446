// strace attached to a running gateway: to stretch a moment on purpose (strace's inject=) or to
// see which system calls the gateway makes.
import { spawn } from 'node:child_process';

// attachStrace(pid, args, {output}): `args` are strace's own; `output` a file for its trace
// (/dev/null by default). Resolves with {stop} once strace says it attached (stop() detaches and
// resolves once strace has exited, its trace written), or with {error} saying why it cannot
// (not installed, not permitted here).
export function attachStrace(pid, args, { output = '/dev/null' } = {}) {
  return new Promise((resolve) => {
    const p = spawn('strace', ['-f', '-o', output, ...args, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let timer = null;
    const give = (r) => {
      clearTimeout(timer);
      resolve(r);
    };
    timer = setTimeout(() => {
      p.kill('SIGKILL');
      give({ error: `strace did not attach within 5 s: ${err}` });
    }, 5000);
    p.on('error', (e) => give({ error: `strace: ${e.code}` }));
    p.on('exit', () => give({ error: `strace ended: ${err.trim()}` }));
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d) => {
      err += d;
      if (/attached/.test(err))
        give({
          stop: () =>
            new Promise((done) => {
              if (p.exitCode !== null || p.signalCode !== null) return done();
              p.once('exit', done);
              p.kill('SIGTERM'); // detaches
            }),
        });
    });
  });
}
