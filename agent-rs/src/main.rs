fn main() {
    std::process::exit(medic_agent::run(std::env::args_os().collect()));
}
