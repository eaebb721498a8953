/// The dashboard's stylesheet and script, served from the binary (`/ui/static/…`): no build chain, no CDN.
enum DashboardAssets {
    static let css = """
        :root { color-scheme: light dark; --fg: #1d2430; --muted: #667085; --bg: #ffffff; --panel: #f5f7fa; --line: #d0d5dd;
          --accent: #2563eb; --bad: #c0392b; --warn: #b7791f; --good: #2f855a;
          --a0: #2563eb; --a1: #d9480f; --a2: #2f9e44; --a3: #9c36b5; --a4: #0c8599; --a5: #e8590c; }
        @media (prefers-color-scheme: dark) { :root { --fg: #e4e7ec; --muted: #98a2b3; --bg: #10141b; --panel: #1a202b; --line: #344054;
          --accent: #6ea8fe; --bad: #ff6b6b; --warn: #f6c343; --good: #63e6be;
          --a0: #6ea8fe; --a1: #ff922b; --a2: #69db7c; --a3: #da77f2; --a4: #3bc9db; --a5: #ffa94d; } }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; gap: 1em; align-items: center; padding: .6em 1.2em; background: var(--panel); border-bottom: 1px solid var(--line); }
        header form { margin-left: auto; }
        .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
        .role, .who, .live-state { color: var(--muted); }
        main { padding: 1em 1.2em 3em; max-width: 1200px; }
        h1 { font-size: 1.5em; margin: .3em 0; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; } h3 { font-size: 1em; margin: .8em 0 .2em; }
        a { color: var(--accent); }
        table { border-collapse: collapse; width: 100%; font-size: 13px; }
        th, td { text-align: left; padding: .3em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { color: var(--muted); font-weight: 600; }
        .muted, .empty { color: var(--muted); }
        .badge { display: inline-block; padding: 0 .45em; border-radius: .6em; font-size: 12px; border: 1px solid var(--line); }
        .badge.running, .badge.online, .badge.ready, .badge.completed, .badge.resolved { color: var(--good); border-color: var(--good); }
        .badge.failed, .badge.offline, .badge.critical, .badge.failure, .badge.open, .badge.unavailable { color: var(--bad); border-color: var(--bad); }
        .badge.cordoned, .badge.draining, .badge.paused, .badge.high, .badge.queued, .badge.acknowledged { color: var(--warn); border-color: var(--warn); }
        .badge.level { font-weight: 700; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .4em 0; } dt { color: var(--muted); } dd { margin: 0; }
        pre { background: var(--panel); border: 1px solid var(--line); padding: .6em; overflow: auto; max-height: 28em; font-size: 12px; white-space: pre-wrap; }
        ul.incidents { padding-left: 1.2em; }
        ol.levels li.ack { color: var(--good); } ol.levels li.page { color: var(--bad); } ol.levels li.resolved { color: var(--good); }
        time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: .5em; }
        .actions { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin: .5em 0; }
        button { font: inherit; padding: .3em .9em; border-radius: .3em; border: 1px solid var(--accent); background: var(--accent); color: var(--bg); cursor: pointer; }
        button.link { background: none; color: var(--accent); border: none; padding: 0; }
        input { font: inherit; padding: .3em .5em; border: 1px solid var(--line); border-radius: .3em; background: var(--bg); color: var(--fg); }
        body.login main { max-width: 24em; margin: 10vh auto; } body.login form { display: flex; flex-direction: column; gap: .6em; }
        .error { color: var(--bad); }
        svg.chart { width: 100%; max-width: 900px; height: auto; background: var(--panel); border: 1px solid var(--line); }
        svg.chart .axis { stroke: var(--muted); } svg.chart text { fill: var(--muted); font-size: 11px; }
        svg.chart .series { fill: none; stroke-width: 1.8; } svg.chart .series.step { stroke-width: 1; opacity: .45; }
        svg.chart .series.validation { stroke-dasharray: 5 3; }
        svg.chart .marker line { stroke: var(--fg); stroke-dasharray: 4 4; opacity: .7; } svg.chart .marker text { fill: var(--fg); font-size: 11px; }
        svg.chart .point.nonfinite { fill: var(--bad) !important; stroke: var(--bad) !important; }
        .a0 { stroke: var(--a0); fill: var(--a0); } .a1 { stroke: var(--a1); fill: var(--a1); } .a2 { stroke: var(--a2); fill: var(--a2); }
        .a3 { stroke: var(--a3); fill: var(--a3); } .a4 { stroke: var(--a4); fill: var(--a4); } .a5 { stroke: var(--a5); fill: var(--a5); }
        svg.chart polyline.a0, svg.chart polyline.a1, svg.chart polyline.a2, svg.chart polyline.a3, svg.chart polyline.a4, svg.chart polyline.a5 { fill: none; }
        .legend .key { display: inline-block; width: 1.6em; height: 0; border-top: 2px solid var(--muted); margin: 0 .3em .2em .8em; }
        .legend .key.validation { border-top-style: dashed; } .legend .key.step { opacity: .45; }
        """

    /// Follows the page's event stream (`data-live`) and swaps in the sections it sends: one connection per page,
    /// no polling. EventSource reconnects by itself after a controller restart.
    static let js = """
        "use strict";
        (() => {
          const path = document.body.dataset.live;
          if (!path || !window.EventSource) return;
          const state = document.getElementById("live-state");
          const source = new EventSource(path);
          source.addEventListener("open", () => { if (state) state.textContent = "live"; });
          source.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
          source.addEventListener("sections", (event) => {
            const sections = JSON.parse(event.data);
            for (const [id, html] of Object.entries(sections)) {
              const element = document.getElementById(id);
              if (element && element.innerHTML !== html) element.innerHTML = html;
            }
            document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
          });
        })();
        """
}
