// Live status: asks the API about each report still in progress, as often as
// its Retry-After says, and when one changes swaps in the server's own
// rendering of it (so sizes, dates and links read exactly as on a reload),
// and the header's unread count with it.

const IN_PROGRESS = new Set(["pending", "generating"]);
const DEFAULT_WAIT_SECONDS = 2;
const announcer = document.getElementById("announcer");

function announce(text) {
  if (announcer) {
    announcer.textContent = text;
  }
}

function wait(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

function retryAfter(response) {
  const value = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? value : DEFAULT_WAIT_SECONDS;
}

function selectorFor(id) {
  return `[data-report-id="${CSS.escape(id)}"]`;
}

async function freshRendering(id) {
  const response = await fetch(window.location.href, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) {
    return null;
  }
  const html = await response.text();
  const page = new DOMParser().parseFromString(html, "text/html");
  // A report that settles brings a notification: the header's unread count follows.
  const notices = page.querySelector(".notices-link");
  const shown = document.querySelector(".notices-link");
  if (notices && shown && notices.dataset.unread !== shown.dataset.unread) {
    shown.replaceWith(document.importNode(notices, true));
  }
  return page.querySelector(selectorFor(id));
}

async function follow(id) {
  for (;;) {
    const current = document.querySelector(selectorFor(id));
    if (!current || !IN_PROGRESS.has(current.dataset.status)) {
      return;
    }
    let response;
    try {
      response = await fetch(`/api/v1/reports/${encodeURIComponent(id)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch {
      await wait(DEFAULT_WAIT_SECONDS * 2);
      continue;
    }
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      return;
    }
    if (!response.ok) {
      await wait(retryAfter(response));
      continue;
    }
    const body = await response.json();
    const status = body.data.status;
    if (status !== current.dataset.status) {
      const replacement = await freshRendering(id);
      if (replacement) {
        current.replaceWith(document.importNode(replacement, true));
        const badge = replacement.querySelector("[data-status-badge]");
        const kind = replacement.querySelector("a, h1");
        const label = badge ? badge.textContent.trim() : status;
        announce(`${kind ? kind.textContent.trim() : "Report"}: ${label}`);
      }
      if (!IN_PROGRESS.has(status)) {
        return;
      }
    }
    await wait(retryAfter(response));
  }
}

for (const element of document.querySelectorAll("[data-report-id][data-status]")) {
  if (IN_PROGRESS.has(element.dataset.status)) {
    follow(element.dataset.reportId);
  }
}
