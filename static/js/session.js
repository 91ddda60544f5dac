// What a live page (the blotter, an order, the risk console) asks when its socket closes
// before it opened. A refused handshake reaches the page as a bare close (1006), like a
// server that is down: the page asks whether its session still holds, and if not says so
// and stops, instead of "reconnecting" for ever over figures that no longer update (a
// trial: an admin had reset the user's password).
window.oversightSession = {
  ENDED: "session ended (logged out, or your password or access changed): reload the page to log in",
  // `need`: what the page is for ("watch": orders; "risk": the console): a session that
  // holds but whose role no longer allows the page is over for it too (a trial: a trader
  // made a risk manager watched "reconnecting" for ever).
  async over(need) {
    try {
      const r = await fetch(`/session/${need ? `?need=${need}` : ""}`, { headers: { Accept: "application/json" }, credentials: "same-origin", redirect: "manual", signal: AbortSignal.timeout(5000) });
      return r.type === "opaqueredirect" || r.status === 401 || r.status === 403;
    } catch (x) {
      return false; // the server is down: keep trying
    }
  },
};
