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

async function fetchResumable(url, onProgress) {
  const chunks = [];
  let received = 0;
  let total = null;
  let etag = null;
  let filename = "report";
  let attempts = 0;
  for (;;) {
    const headers = {};
    if (received > 0 && etag) {
      headers.Range = `bytes=${received}-`;
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
      chunks.length = 0;
      received = 0;
      etag = response.headers.get("ETag");
      total = Number.parseInt(response.headers.get("Content-Length") ?? "", 10);
      filename = filenameOf(response);
    } else if (response.status === 206) {
      const range = /bytes (\d+)-(\d+)\/(\d+)/.exec(response.headers.get("Content-Range") ?? "");
      if (!range || Number(range[1]) !== received) {
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
        chunks.push(value);
        received += value.length;
        onProgress(received, total);
      }
    } catch (error) {
      attempts += 1;
      if (attempts >= MAX_ATTEMPTS || !etag) {
        throw error;
      }
      await wait(attempts);
      continue;
    }
    if (Number.isFinite(total) && received < total) {
      attempts += 1;
      if (attempts >= MAX_ATTEMPTS) {
        throw new DownloadFailed("the connection kept dropping");
      }
      continue;
    }
    return { blob: new Blob(chunks), filename, attempts };
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
    const { blob, filename, attempts } = await fetchResumable(link.href, (received, total) => {
      if (Number.isFinite(total) && total > 0) {
        bar.max = total;
        bar.value = received;
        text.textContent = `${size(received)} of ${size(total)}`;
      }
    });
    say("Checking the file's SHA-256…");
    const digest = hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
    if (digest !== link.dataset.sha256) {
      box.dataset.outcome = "mismatch";
      say("The file received does not match this report's SHA-256, so it was not saved. Please try again.");
      return;
    }
    offer(blob, filename);
    box.dataset.outcome = "verified";
    box.dataset.attempts = String(attempts);
    say(`Downloaded ${size(blob.size)}; its SHA-256 matches the report's.`);
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
