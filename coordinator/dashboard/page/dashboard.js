// The protofed dashboard: a viewer of one run. The viewer key comes in the page's fragment
// (#viewer=...), which the browser never sends to a server; the page hands it to socket.io.
(function () {
  'use strict';
  var viewer = new URLSearchParams(location.hash.slice(1)).get('viewer') || '';
  var missions = [];
  var info = null;
  var phase = null;
  var accuracyPlot = null;
  var bytesPlot = null;

  function text(id, value) { document.getElementById(id).textContent = value; }
  function fmtBytes(n) {
    if (n < 1024) return Math.round(n) + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1024 / 1024).toFixed(2) + ' MB';
  }
  function fmtAcc(a) { return a === null || a === undefined ? '–' : a.toFixed(4); }

  function showInfo() {
    text('scenario', info.scenario);
    var rows = [
      ['run', info.runId], ['mode', info.mode + ', ' + info.clients + ' clients'], ['strategy', info.strategy],
      ['schedule', info.schedule + ' (' + info.merge + ')'], ['codec', info.codec.uplink + ' up / ' + info.codec.downlink + ' down'],
      ['missions', 'up to ' + info.missionLimit],
    ];
    var dl = document.getElementById('info');
    dl.innerHTML = '';
    rows.forEach(function (r) {
      var dt = document.createElement('dt'); dt.textContent = r[0];
      var dd = document.createElement('dd'); dd.textContent = r[1];
      dl.appendChild(dt); dl.appendChild(dd);
    });
  }

  function showStatus() {
    var last = missions[missions.length - 1];
    var where = phase ? (phase.phase === 'finished' ? 'finished after ' + missions.length + ' missions'
      : phase.phase === 'failed' ? 'failed: ' + (phase.detail || '')
      : phase.phase === 'starting' ? 'starting'
      : 'mission ' + (phase.mission + 1) + ' of ' + info.missionLimit + ': ' + (phase.phase === 'running' ? 'running' : phase.phase)) : '';
    text('status', where + (last ? ' · global accuracy ' + fmtAcc(last.globalAccuracy) + ' over ' + last.classesKnown + ' classes' : ''));
  }

  function series() {
    var x = missions.map(function (m) { return m.mission + 1; });
    return {
      accuracy: [x, missions.map(function (m) { return m.globalAccuracy; }),
        missions.map(function (m) { return m.clientsBefore; }), missions.map(function (m) { return m.clientsAfter; })],
      bytes: [x, missions.map(function (m) { return m.bytes.up.message; }), missions.map(function (m) { return m.bytes.up.payload; }),
        missions.map(function (m) { return m.bytes.down.message; }), missions.map(function (m) { return m.bytes.down.payload; })],
    };
  }

  // Missions are whole numbers: ticks at 1, 2, 5, 10, … missions apart.
  var missionAxis = { label: 'mission', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] };

  function width() { return Math.max(400, Math.min(1000, document.body.clientWidth - 40)); }

  function drawCharts() {
    var s = series();
    if (!accuracyPlot) {
      accuracyPlot = new uPlot({
        width: width(), height: 260, scales: { x: { time: false }, y: { range: [0, 1] } },
        axes: [missionAxis, { label: 'accuracy' }],
        series: [{ label: 'mission' }, { label: 'global', stroke: '#1f77b4', width: 2 },
          { label: 'clients before merge', stroke: '#ff7f0e' }, { label: 'clients after merge', stroke: '#2ca02c' }],
      }, s.accuracy, document.getElementById('accuracy'));
      bytesPlot = new uPlot({
        width: width(), height: 260, scales: { x: { time: false } },
        axes: [missionAxis, { label: 'bytes', size: 70, values: function (u, vals) { return vals.map(fmtBytes); } }],
        series: [{ label: 'mission' }, { label: 'up (messages)', stroke: '#d62728' }, { label: 'up (payload)', stroke: '#d62728', dash: [5, 5] },
          { label: 'down (messages)', stroke: '#9467bd' }, { label: 'down (payload)', stroke: '#9467bd', dash: [5, 5] }],
      }, s.bytes, document.getElementById('bytes'));
    } else {
      accuracyPlot.setData(s.accuracy);
      bytesPlot.setData(s.bytes);
    }
  }

  function showClients(rows) {
    var body = document.querySelector('#clients tbody');
    body.innerHTML = '';
    rows.forEach(function (c) {
      var tr = document.createElement('tr');
      var seen = c.lastSeen ? Math.max(0, Math.round((Date.now() - c.lastSeen) / 1000)) + ' s ago' : '–';
      [c.clientId + (c.left ? ' (left)' : ''), c.connected ? 'yes' : 'no', seen, c.tableVersion, fmtBytes(c.bytesUp), fmtBytes(c.bytesDown),
        c.restarts, c.late, c.owed, c.lost, c.refused].forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = String(v);
        if (i === 1 && !c.connected) td.className = 'no';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function showPopulation(p) {
    if (!p) return;
    document.getElementById('population-section').hidden = false;
    document.getElementById('clients-section').hidden = true;
    text('population-reach', p.clientsReached.toLocaleString('en') + ' of ' + info.clients.toLocaleString('en') +
      ' clients have taken part; ' + p.participants.toLocaleString('en') + ' in the last mission');
    var body = document.querySelector('#population tbody');
    body.innerHTML = '';
    [['bytes up', p.bytesUp], ['bytes down', p.bytesDown]].forEach(function (row) {
      var tr = document.createElement('tr');
      [row[0], fmtBytes(row[1].mean), fmtBytes(row[1].p50), fmtBytes(row[1].p99), fmtBytes(row[1].max)].forEach(function (v) {
        var td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  var socket = io('/dashboard', { path: '/protofed/live/', auth: { viewer: viewer } });
  socket.on('connect_error', function (err) { text('status', 'cannot connect: ' + err.message); });
  socket.on('history', function (h) {
    info = h.info; missions = h.missions; phase = h.phase;
    showInfo(); drawCharts(); showClients(h.clients); showPopulation(h.population); showStatus();
    document.body.setAttribute('data-ready', 'true');
  });
  socket.on('mission', function (m) { missions.push(m); drawCharts(); showStatus(); });
  socket.on('clients', showClients);
  socket.on('population', showPopulation);
  socket.on('phase', function (p) { phase = p; showStatus(); });
})();
