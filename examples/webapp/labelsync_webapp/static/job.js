// Polls the job's JSON status and moves the progress bar; reloads for the report when done.
(function () {
  "use strict";
  const job = document.getElementById("job");
  if (!job || job.dataset.finished === "true") {
    return;
  }
  const url = job.dataset.statusUrl;

  function show(state) {
    const bar = document.getElementById("progress");
    bar.max = state.total;
    bar.value = state.processed;
    document.getElementById("percent").textContent = state.percent + "%";
    document.getElementById("count").textContent = state.processed + " of " + state.total + " Users";
    const status = document.getElementById("status");
    status.textContent = state.status;
    status.className = "status " + state.status.toLowerCase();
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const state = await response.json();
      show(state);
      if (state.finished) {
        window.location.reload(); // the server renders the report (or who superseded it)
        return;
      }
    } catch (error) {
      // A restart of the app: keep polling, the worker resumes the push.
    }
    window.setTimeout(poll, 250);
  }

  poll();
})();
