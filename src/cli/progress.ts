/** One-line progress bar on a terminal; plain periodic lines elsewhere (CI logs, pipes). */
export class ProgressBar {
  private lastLine = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly width = 30,
  ) {}

  update(done: number, total: number, suffix: string): void {
    const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const filled = Math.round(ratio * this.width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${suffix}`;
    if (this.out.isTTY) {
      this.out.write(`\r${line}\x1b[K`);
    } else if (Date.now() - this.lastLine >= 2000 || ratio === 1) {
      this.out.write(line + '\n');
      this.lastLine = Date.now();
    }
  }

  done(message: string): void {
    this.out.write((this.out.isTTY ? '\r\x1b[K' : '') + message + '\n');
  }
}
