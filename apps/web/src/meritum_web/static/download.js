// The Download button with JavaScript: a progress bar from Content-Length,
// resuming with Range / If-Range after a dropped connection rather than
// starting over, and the file offered only once its SHA-256 (Web Crypto)
// matches the report's. Without JavaScript the button is a plain link.

const MAX_ATTEMPTS = 6;
//: Web Crypto digests a whole buffer: beyond this the plain link is better.
const MAX_IN_MEMORY = 512 * 1000 * 1000;

function wait(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

function size(bytes) {
  if (bytes < 1000) {
    return `${bytes} bytes`;
  }
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes;
  for (const unit of units) {
    value /= 1000;
    if (value < 999.95 || unit === units[units.length - 1]) {
      return `${value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}

function filenameOf(response) {
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (encoded) {
    return decodeURIComponent(encoded[1]);
  }
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : "report";
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

class DownloadFailed extends Error {}

// What has arrived so far. With a Content-Length the bytes go straight into
// one buffer of the file's size: no copy into a Blob and back out to hash it.
class Received {
  constructor() {
    this.reset(null);
  }

  reset(total) {
    this.total = total;
    this.length = 0;
    this.buffer = Number.isFinite(total) && total > 0 ? new Uint8Array(total) : null;
    this.chunks = [];
  }

  add(chunk) {
    if (this.buffer && this.length + chunk.length <= this.buffer.length) {
      this.buffer.set(chunk, this.length);
    } else {
      if (this.buffer) {
        // More than announced: keep what came in order, the digest will tell.
        this.chunks.push(this.buffer.subarray(0, this.length));
        this.buffer = null;
      }
      this.chunks.push(chunk);
    }
    this.length += chunk.length;
  }

  bytes() {
    if (this.buffer) {
      return this.buffer.length === this.length ? this.buffer : this.buffer.subarray(0, this.length);
    }
    const whole = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      whole.set(chunk, offset);
      offset += chunk.length;
    }
    return whole;
  }
}

//: How often the progress bar is redrawn while bytes arrive.
const PROGRESS_EVERY_MS = 100;

async function fetchResumable(url, onProgress) {
  const received = new Received();
  let total = null;
  let etag = null;
  let filename = "report";
  let attempts = 0;
  let shownAt = 0;
  for (;;) {
    const headers = {};
    if (received.length > 0 && etag) {
      headers.Range = `bytes=${received.length}-`;
      headers["If-Range"] = etag;
    }
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers, cache: "no-store" });
    } catch (error) {
      attempts += 1;
      if (attempts >= MAX_ATTEMPTS) {
        throw error;
      }
      await wait(attempts);
      continue;
    }
    if (response.status === 200) {
      // A whole file: the first answer, or the file changed under If-Range.
      etag = response.headers.get("ETag");
      total = Number.parseInt(response.headers.get("Content-Length") ?? "", 10);
      received.reset(total);
      filename = filenameOf(response);
    } else if (response.status === 206) {
      const range = /bytes (\d+)-(\d+)\/(\d+)/.exec(response.headers.get("Content-Range") ?? "");
      if (!range || Number(range[1]) !== received.length) {
        throw new DownloadFailed("the server resumed at the wrong place");
      }
      total = Number(range[3]);
    } else {
      throw new DownloadFailed(`the server answered ${response.status}`);
    }
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          break;
        }
        received.add(value);
        const now = performance.now();
        if (now - shownAt >= PROGRESS_EVERY_MS) {
          shownAt = now;
          onProgress(received.length, total);
        }
      }
    } catch (error) {
      attempts += 1;
      if (attempts >= MAX_ATTEMPTS || !etag) {
        throw error;
      }
      onProgress(received.length, total);
      await wait(attempts);
      continue;
    }
    onProgress(received.length, total);
    if (Number.isFinite(total) && received.length < total) {
      attempts += 1;
      if (attempts >= MAX_ATTEMPTS) {
        throw new DownloadFailed("the connection kept dropping");
      }
      continue;
    }
    return { bytes: received.bytes(), filename, attempts };
  }
}

function offer(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function download(link) {
  const box = document.querySelector("[data-download-progress]");
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-download-text]");
  const announcer = document.getElementById("announcer");
  const say = (message) => {
    text.textContent = message;
    if (announcer) {
      announcer.textContent = message;
    }
  };
  box.hidden = false;
  link.setAttribute("aria-disabled", "true");
  link.dataset.busy = "true";
  try {
    const progress = (received, total) => {
      if (Number.isFinite(total) && total > 0) {
        bar.max = total;
        bar.value = received;
        text.textContent = `${size(received)} of ${size(total)}`;
      }
    };
    const { bytes, filename, attempts } = await fetchResumable(link.href, progress);
    say("Checking the file's SHA-256…");
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    if (digest !== link.dataset.sha256) {
      box.dataset.outcome = "mismatch";
      say("The file received does not match this report's SHA-256, so it was not saved. Please try again.");
      return;
    }
    offer(new Blob([bytes]), filename);
    box.dataset.outcome = "verified";
    box.dataset.attempts = String(attempts);
    say(`Downloaded ${size(bytes.length)}; its SHA-256 matches the report's.`);
  } catch (error) {
    box.dataset.outcome = "failed";
    say("The download did not finish. Check your connection and press Download again.");
  } finally {
    link.removeAttribute("aria-disabled");
    delete link.dataset.busy;
  }
}

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[data-download]") : null;
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) {
    return;
  }
  const tooBig = Number(link.dataset.size) > MAX_IN_MEMORY;
  if (!window.crypto?.subtle || !window.ReadableStream || !link.dataset.sha256 || tooBig) {
    return; // the plain link does the job
  }
  event.preventDefault();
  if (link.dataset.busy !== "true") {
    download(link);
  }
});
