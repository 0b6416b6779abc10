# Homebrew formula for medic-agent (macOS Intel and Apple Silicon, Linuxbrew).
# This is the template: `build.sh dist` packs the release tarball and writes the formula to
# publish, target/dist/medic-agent.rb, with the tarball's url (DIST_URL) and sha256 in place
# of the two tokens below.
class MedicAgent < Formula
  desc "Medic agent: remote execution of host-approved scripts, cron job wrapper"
  homepage "https://medic.example.com"
  url "@TARBALL_URL@"
  sha256 "@TARBALL_SHA256@"
  license "LicenseRef-Medic"

  depends_on "rust" => :build

  def install
    # Cargo.lock pins Debian's packaged crate sources (the build tested on Linux);
    # packaging/crates-io.lock pins the same versions on the public registry, with its checksums
    # and the macOS-only crates (security-framework). std_cargo_args passes --locked.
    mv "packaging/crates-io.lock", "Cargo.lock"
    system "cargo", "install", *std_cargo_args

    config = buildpath/"packaging/medic-agent.toml"
    inreplace config do |s|
      s.gsub! "/etc/medic-agent", (etc/"medic-agent").to_s
      s.gsub! "/var/lib/medic-agent", (var/"lib/medic-agent").to_s
    end
    (etc/"medic-agent").install config unless (etc/"medic-agent/medic-agent.toml").exist?
    (etc/"medic-agent").install "packaging/scripts.toml" unless (etc/"medic-agent/scripts.toml").exist?
    (etc/"medic-agent/scripts").mkpath
    (var/"lib/medic-agent/jobs").mkpath
  end

  def caveats
    <<~EOS
      Configure #{etc}/medic-agent/medic-agent.toml, put the API key in
      #{etc}/medic-agent/api-key (chmod 600) and register scripts in
      #{etc}/medic-agent/scripts.toml, then: brew services start medic-agent
      The cron wrapper needs --config #{etc}/medic-agent/medic-agent.toml (or MEDIC_URL and
      MEDIC_API_KEY): its built-in default is /etc/medic-agent/medic-agent.toml.
      macOS does not enforce the memory limit (RLIMIT_AS); the other limits apply.
    EOS
  end

  service do
    run [opt_bin/"medic-agent", "run", "--config", etc/"medic-agent/medic-agent.toml"]
    keep_alive successful_exit: false
    log_path var/"log/medic-agent.log"
    error_log_path var/"log/medic-agent.log"
  end

  test do
    assert_equal "medic-agent #{version}\n", shell_output("#{bin}/medic-agent --version")
    (testpath/"s.sh").write "abc"
    assert_match "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                 shell_output("#{bin}/medic-agent hash #{testpath}/s.sh")
    assert_equal "7\n", shell_output("MEDIC_URL=http://127.0.0.1:9 MEDIC_API_KEY=k " \
                                     "#{bin}/medic-agent exec --service t -- sh -c 'echo 7; exit 3' " \
                                     "2>/dev/null", 3)
  end
end
