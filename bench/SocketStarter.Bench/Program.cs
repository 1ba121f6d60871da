using System.CommandLine;
using SocketStarter.Bench;

// Ctrl-C cancels the run; the services and the broker node it started then stop, which takes
// seconds (SIGTERM lets workers drain), so the process waits for that rather than leave them behind.
return await Cli.Build().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(90) });
