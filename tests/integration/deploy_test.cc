// What can be checked of deploy/ without a Docker engine: Prometheus and
// Alertmanager accept their configs, kpistream accepts its own, every
// manifest is valid YAML, the image's runtime packages hold every library
// the binary links, and the stack's traffic lets sessions close.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

TEST(DeployTest, PrometheusConfigIsValid) {
  CommandResult r =
      RunCommand({"promtool", "check", "config", "--syntax-only",
                  SourceDir() + "/deploy/prometheus/prometheus.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, AlertmanagerConfigIsValid) {
  CommandResult r =
      RunCommand({"amtool", "check-config",
                  SourceDir() + "/deploy/alertmanager/alertmanager.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, KpistreamConfigOfTheStackIsValid) {
  CommandResult r =
      RunCommand({KpistreamBinary(), "check-config",
                  SourceDir() + "/deploy/kpistream/kpistream.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, EveryManifestIsYaml) {
  // Debian's python3 with python3-yaml (installed by .ci/setup).
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "for path in sys.argv[1:]:\n"
       "    docs = [d for d in yaml.safe_load_all(open(path)) if d is not "
       "None]\n"
       "    assert docs, path\n"
       "    print(path, len(docs))\n",
       SourceDir() + "/deploy/compose.yaml",
       SourceDir() + "/deploy/k8s/kpistream.yaml",
       SourceDir() + "/deploy/k8s/prometheusrule.yaml",
       SourceDir() + "/deploy/grafana/provisioning/datasources/prometheus.yaml",
       SourceDir() + "/deploy/grafana/provisioning/dashboards/kpistream.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// deploy/k8s/prometheusrule.yaml and deploy/alertmanager/alertmanager.yml
// are what `kpistream rules` writes for the stack's config, byte for byte.
TEST(DeployTest, GeneratedFilesAreCurrent) {
  TempDir dir;
  CommandResult rules = RunCommand(
      {KpistreamBinary(), "rules", "--config",
       SourceDir() + "/deploy/kpistream/kpistream.yaml", "--out", dir.path()});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  for (const auto& [generated, committed] :
       std::vector<std::pair<std::string, std::string>>{
           {"kpistream-prometheusrule.yaml", "deploy/k8s/prometheusrule.yaml"},
           {"alertmanager.example.yml",
            "deploy/alertmanager/alertmanager.yml"}}) {
    CommandResult diff =
        RunCommand({"diff", "-u", SourceDir() + "/" + committed,
                    dir.path() + "/" + generated});
    EXPECT_EQ(diff.exit_code, 0)
        << committed << " is stale; regenerate: kpistream rules --config "
        << "deploy/kpistream/kpistream.yaml --out DIR and copy DIR/"
        << generated << "\n"
        << diff.out;
  }
}

// The PrometheusRule's groups load in Prometheus.
TEST(DeployTest, PrometheusRuleGroupsPassPromtool) {
  TempDir dir;
  const std::string rules = dir.path() + "/from-prometheusrule.rules.yml";
  CommandResult extract = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "doc = yaml.safe_load(open(sys.argv[1]))\n"
       "assert doc['kind'] == 'PrometheusRule', doc['kind']\n"
       "assert doc['apiVersion'] == 'monitoring.coreos.com/v1'\n"
       "yaml.safe_dump({'groups': doc['spec']['groups']}, open(sys.argv[2], "
       "'w'))\n",
       SourceDir() + "/deploy/k8s/prometheusrule.yaml", rules});
  ASSERT_EQ(extract.exit_code, 0) << extract.out << extract.err;
  CommandResult check = RunCommand({"promtool", "check", "rules", rules});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // 30 recording rules; bounce (3 alerts), signup (3), fy_orders (2); 8
  // engine alerts.
  EXPECT_NE(check.out.find("SUCCESS: 46 rules found"), std::string::npos)
      << check.out;
}

// The k8s ConfigMap carries the same KPI setup as the compose stack's
// config (so the PrometheusRule generated from the latter fits it), and
// kpistream accepts it.
TEST(DeployTest, KubernetesConfigMapMatchesTheStack) {
  TempDir dir;
  const std::string config = dir.path() + "/configmap-kpistream.yaml";
  CommandResult extract = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "docs = list(yaml.safe_load_all(open(sys.argv[1])))\n"
       "cm = [d for d in docs if d and d['kind'] == 'ConfigMap'][0]\n"
       "text = cm['data']['kpistream.yaml']\n"
       "open(sys.argv[3], 'w').write(text)\n"
       "mine, stack = yaml.safe_load(text), yaml.safe_load(open(sys.argv[2]))\n"
       "for key in ('goals', 'funnels', 'targets'):\n"
       "    assert mine.get(key) == stack.get(key), key\n",
       SourceDir() + "/deploy/k8s/kpistream.yaml",
       SourceDir() + "/deploy/kpistream/kpistream.yaml", config});
  ASSERT_EQ(extract.exit_code, 0) << extract.out << extract.err;
  CommandResult check = RunCommand({"env", "KAFKA_PASSWORD=unused",
                                    KpistreamBinary(), "check-config", config});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// Grafana in the compose stack reads the dashboard where the rules job
// writes it; the engines start once the topics exist, the changelog
// compacted (its name is the default for the stack's group_id).
TEST(DeployTest, ComposeProvisionsTheGeneratedDashboard) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "compose = yaml.safe_load(open(sys.argv[1]))\n"
       "provider = yaml.safe_load(open(sys.argv[2]))['providers'][0]\n"
       "path = provider['options']['path']\n"
       "grafana = compose['services']['grafana']\n"
       "assert 'rules:' + path + ':ro' in grafana['volumes'], grafana\n"
       "rules = compose['services']['rules']['command']\n"
       "assert rules[rules.index('--out') + 1] == '/rules', rules\n"
       "assert 'rules:/rules' in compose['services']['rules']['volumes']\n"
       "prom = compose['services']['prometheus']['volumes']\n"
       "assert 'rules:/etc/prometheus/rules:ro' in prom, prom\n"
       "init = compose['services']['kafka-init']['command'][0]\n"
       "assert '--topic kpistream-changelog' in init, init\n"
       "assert 'cleanup.policy=compact' in init, init\n"
       "engine = compose['services']['kpistream-1']['depends_on']\n"
       "assert 'kafka-init' in engine, engine\n",
       SourceDir() + "/deploy/compose.yaml",
       SourceDir() + "/deploy/grafana/provisioning/dashboards/kpistream.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// What a review found would break the stack where it runs as the image's
// user, unseen without Docker or a cluster: the image makes /rules (the
// compose rules job's volume) and the state directory its user's before
// USER, and serves /metrics beyond 127.0.0.1; prometheus and grafana wait
// for the rules job to have finished; each compose instance has a host name
// of its own (its instance id, unchanged when recreated); the pods run as
// that user with its group owning their volumes; the PodMonitor and the
// PrometheusRule carry the label kube-prometheus-stack selects by.
TEST(DeployTest, TheStackRunsAsTheImagesUser) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import re, sys, yaml\n"
       "docker = open(sys.argv[1]).read()\n"
       "runtime = docker[docker.index('FROM debian:12-slim'):]\n"
       "uid = re.search(r'useradd --system --uid (\\d+) kpistream', runtime)\n"
       "assert uid, 'no kpistream user'\n"
       "uid = int(uid.group(1))\n"
       "before_user = runtime[:runtime.index('USER kpistream')]\n"
       "chown = re.search(r'chown kpistream ([^\\n]*)', before_user)\n"
       "assert chown, 'nothing chowned before USER'\n"
       "for d in ('/rules', '/var/lib/kpistream'):\n"
       "    assert d in chown.group(1).split(), (d, chown.group(1))\n"
       "assert 'listen: 0.0.0.0:9464' in before_user, 'listen'\n"
       "compose = yaml.safe_load(open(sys.argv[2]))['services']\n"
       "rules = compose['rules']['command']\n"
       "assert rules[rules.index('--out') + 1] == '/rules', rules\n"
       "for s in ('prometheus', 'grafana'):\n"
       "    cond = compose[s]['depends_on']['rules']['condition']\n"
       "    assert cond == 'service_completed_successfully', (s, cond)\n"
       "engines = [n for n, c in compose.items()\n"
       "           if c.get('command', [''])[0] == 'run']\n"
       "assert len(engines) == 2, engines\n"
       "names = [compose[n].get('hostname') for n in engines]\n"
       "assert None not in names and len(set(names)) == 2, names\n"
       "for n in engines:\n"
       "    assert compose[n].get('restart') == 'unless-stopped', n\n"
       "docs = [d for d in yaml.safe_load_all(open(sys.argv[3])) if d]\n"
       "pod = [d for d in docs if d['kind'] == 'StatefulSet'][0]\n"
       "ctx = pod['spec']['template']['spec']['securityContext']\n"
       "assert ctx['runAsUser'] == uid and ctx['fsGroup'] == uid, ctx\n"
       "monitor = [d for d in docs if d['kind'] == 'PodMonitor'][0]\n"
       "rule = yaml.safe_load(open(sys.argv[4]))\n"
       "for d in (monitor, rule):\n"
       "    assert d['metadata']['labels']['release'] == \\\n"
       "        'kube-prometheus-stack', d['metadata']\n",
       SourceDir() + "/deploy/Dockerfile", SourceDir() + "/deploy/compose.yaml",
       SourceDir() + "/deploy/k8s/kpistream.yaml",
       SourceDir() + "/deploy/k8s/prometheusrule.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// An instance that stops (a rolling update, `docker compose stop`) waits
// for Prometheus's final scrape (metrics.final_scrape_wait at least the
// scrape interval; without it, an audit lost 26 % of a run's counts at one
// restart), and is given the time to (the grace before SIGKILL at least
// twice the wait + 1 s, and 10 s for the commit).
TEST(DeployTest, AStoppingInstanceWaitsForTheFinalScrape) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "def secs(v):\n"
       "    v = str(v)\n"
       "    return float(v[:-1]) * {'s': 1, 'm': 60}[v[-1]]\n"
       "def check(wait, interval, grace, where):\n"
       "    assert wait >= interval, (where, wait, interval)\n"
       "    assert grace >= 2 * wait + 1 + 10, (where, grace, wait)\n"
       "    print(where, 'wait', wait, 'interval', interval, 'grace', grace)\n"
       "d = sys.argv[1]\n"
       "stack = yaml.safe_load(open(d + '/kpistream/kpistream.yaml'))\n"
       "prom = yaml.safe_load(open(d + '/prometheus/prometheus.yml'))\n"
       "compose = yaml.safe_load(open(d + '/compose.yaml'))\n"
       "wait = secs(stack['metrics']['final_scrape_wait'])\n"
       "interval = secs(prom['global']['scrape_interval'])\n"
       "services = [s for n, s in compose['services'].items()\n"
       "            if n.startswith('kpistream')]\n"
       "assert len(services) == 2, compose['services'].keys()\n"
       "for s in services:\n"
       "    check(wait, interval, secs(s['stop_grace_period']), 'compose')\n"
       "docs = list(yaml.safe_load_all(open(d + '/k8s/kpistream.yaml')))\n"
       "kind = {doc['kind']: doc for doc in docs if doc}\n"
       "config = yaml.safe_load(kind['ConfigMap']['data']['kpistream.yaml'])\n"
       "pod = kind['StatefulSet']['spec']['template']\n"
       "assert 'annotations' not in pod['metadata'], 'scraped twice'\n"
       "check(secs(config['metrics']['final_scrape_wait']),\n"
       "      secs(kind['PodMonitor']['spec']['podMetricsEndpoints'][0]"
       "['interval']),\n"
       "      pod['spec']['terminationGracePeriodSeconds'], 'k8s')\n",
       SourceDir() + "/deploy"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// The image's config keeps the local state in the directory the image makes
// for it (where the Dockerfile says to mount a volume): the Dockerfile's
// own edit of the example config, run on a copy. Without it, the state
// went to /tmp in the container and a volume there kept nothing (an audit).
TEST(DeployTest, TheImagesConfigKeepsTheStateWhereTheVolumeGoes) {
  TempDir dir;
  const std::string config = dir.path() + "/kpistream.yaml";
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import re, shutil, subprocess, sys, yaml\n"
       "dockerfile, example, config = sys.argv[1:]\n"
       "text = open(dockerfile).read().replace('\\\\\\n', ' ')\n"
       "runs = [l[4:] for l in text.splitlines()\n"
       "        if l.startswith('RUN sed ') and 'kpistream.yaml' in l]\n"
       "assert len(runs) == 1, runs\n"
       "shutil.copy(example, config)\n"
       "subprocess.run(['sh', '-c', runs[0].replace("
       "'/etc/kpistream/kpistream.yaml', config)], check=True)\n"
       "made = re.search(r'mkdir -p (/var/lib/kpistream)', text)\n"
       "assert made, 'no state directory made'\n"
       "c = yaml.safe_load(open(config))\n"
       "assert c['processing']['state_dir'] == made.group(1), c['processing']\n"
       "assert c['metrics']['listen'] == '0.0.0.0:9464', c['metrics']\n",
       SourceDir() + "/deploy/Dockerfile",
       SourceDir() + "/config/examples/kpistream.yaml", config});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  CommandResult check = RunCommand({KpistreamBinary(), "check-config", config});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// The compose stack's traffic, run for a second against the embedded
// broker: loadgen starts once the topics exist and its visitors come back
// seldom enough for their sessions to close (with 5,000 visitors at 200
// events/s each came back every ~2 min: no session would have closed
// before its 24 h limit, and loadgen now warns of that).
TEST(DeployTest, ComposeTrafficLetsSessionsClose) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "loadgen = yaml.safe_load(open(sys.argv[1]))['services']['loadgen']\n"
       "assert 'kafka-init' in loadgen['depends_on'], loadgen\n"
       "print('\\n'.join(loadgen['command']))\n",
       SourceDir() + "/deploy/compose.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<std::string> argv = {KpistreamBinary()};
  for (absl::string_view arg : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    argv.emplace_back(arg);
  }
  ASSERT_GE(argv.size(), 4u);
  ASSERT_EQ(argv[1], "loadgen");
  BrokerProcess broker({"web.events:4"});
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.process().Stderr();
  auto brokers = std::find(argv.begin(), argv.end(), "--brokers");
  ASSERT_NE(brokers, argv.end());
  ASSERT_NE(brokers + 1, argv.end());
  brokers[1] = broker.bootstrap();
  argv.insert(argv.end(), {"--duration", "1s"});
  CommandResult loadgen = RunCommand(argv);
  EXPECT_EQ(loadgen.exit_code, 0) << loadgen.err;
  EXPECT_TRUE(absl::StrContains(loadgen.out, "produced")) << loadgen.out;
  EXPECT_FALSE(absl::StrContains(loadgen.err, "too often")) << loadgen.err;
}

// The runtime stage of deploy/Dockerfile installs, itself or through the
// dependencies apt pulls in, the package of every shared library the
// binary links (its NEEDED entries): a library added to the build without
// its package in the image would fail only when the image starts. Read
// with Debian's tools on the binary under test (the image's packages are
// this machine's: both are Debian 12).
TEST(DeployTest, RuntimeImageInstallsEveryLibraryTheBinaryLinks) {
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import os, re, subprocess, sys\n"
       "text = open(sys.argv[1]).read()\n"
       "stage = text[text.index('FROM debian:12-slim'):]\n"
       "install = stage[stage.index('install -y'):].split('&&')[0]\n"
       "listed = [w for w in install.replace('\\\\', ' ').split()[2:]\n"
       "          if not w.startswith('-')]\n"
       "assert listed, install\n"
       "out = subprocess.run(['apt-cache', 'depends', '--recurse',\n"
       "    '--no-recommends', '--no-suggests', '--no-conflicts',\n"
       "    '--no-breaks', '--no-replaces', '--no-enhances'] + listed,\n"
       "    capture_output=True, text=True, check=True).stdout\n"
       "closure = {l.strip() for l in out.splitlines()\n"
       "           if l and not l.startswith(' ')}\n"
       "needed = re.findall(r'\\(NEEDED\\).*\\[(.+)\\]', subprocess.run(\n"
       "    ['readelf', '-d', sys.argv[2]], capture_output=True, text=True,\n"
       "    check=True).stdout)\n"
       "assert needed\n"
       "paths = {}\n"
       "ldd = subprocess.run(['ldd', sys.argv[2]], capture_output=True,\n"
       "                     text=True, check=True).stdout\n"
       "for line in ldd.splitlines():\n"
       "    parts = line.split()\n"
       "    if len(parts) >= 3 and parts[1] == '=>':\n"
       "        paths[parts[0]] = os.path.realpath(parts[2])\n"
       "missing = []\n"
       "for lib in needed:\n"
       "    path = paths[lib]\n"
       "    found = None\n"
       "    # /lib is /usr/lib on Debian 12: dpkg knows one of the two.\n"
       "    for p in (path, path.replace('/usr/lib/', '/lib/', 1)):\n"
       "        q = subprocess.run(['dpkg', '-S', p], capture_output=True,\n"
       "                           text=True)\n"
       "        if q.returncode == 0:\n"
       "            found = q.stdout.split(':')[0]\n"
       "            break\n"
       "    assert found, 'no package has ' + path\n"
       "    if found not in closure:\n"
       "        missing.append(lib + ' (' + found + ')')\n"
       "assert not missing, 'not installed by the runtime stage: ' + \\\n"
       "    ', '.join(missing) + '; it installs ' + ' '.join(listed)\n"
       "print(len(needed), 'libraries,', len(closure), 'packages')\n",
       SourceDir() + "/deploy/Dockerfile", KpistreamBinary()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace kpistream::testing
